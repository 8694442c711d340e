// The nodes on one database (docs/multi-node.md): registration and liveness,
// forgetting one, the per-node session counts behind the concurrent-connection
// limit across nodes (on both dialects), the MTA-STS policy and MX records
// naming every node, and one `mailferry serve` on SQLite as the one node.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePolicy } from "mailauth/lib/mta-sts";
import { domainRecords, mtaStsId, mtaStsPolicy, zoneLine } from "../src/auth/records.ts";
import { UserError } from "../src/errors.ts";
import { openDatabase, type Store } from "../src/store/db.ts";
import type { Dialect } from "../src/store/dialect.ts";
import { closeNodeSession, forgetNode, listNodes, liveSessions, NODE_ALIVE_MS, nodeHostnames, openNodeSession, registerNode, touchNode } from "../src/store/nodes.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry } from "./support/mailferry.ts";
import { type Postgres, startPostgres } from "./support/postgres.ts";
import { SmtpTalk } from "./support/smtp-client.ts";

const DIALECTS: Dialect[] = ["sqlite", "postgres"];
let postgres: Postgres | undefined;
const open: Store[] = [];
const dirs: string[] = [];
beforeAll(async () => {
  postgres = await startPostgres();
}, 120_000);
afterAll(() => postgres?.stop());
afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => {});
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

async function freshStore(dialect: Dialect): Promise<Store> {
  let location: string;
  if (dialect === "postgres") location = await postgres!.createDatabase();
  else {
    const dir = mkdtempSync(join(tmpdir(), "mailferry-nodes-"));
    dirs.push(dir);
    location = join(dir, "test.db");
  }
  const s = await openDatabase(location);
  open.push(s);
  return s;
}

const T = 1_800_000_000_000;

describe.each(DIALECTS)("nodes on %s", (dialect) => {
  test("a node registers, stays alive while it refreshes, and is forgotten on request", async () => {
    const { db } = await freshStore(dialect);
    await registerNode(db, "mx1.example.test", T + 1_000);
    // A running node forgotten meanwhile registers again at its next refresh (on SQLite, the way to a second row).
    await touchNode(db, "mx2.example.test", T);
    await touchNode(db, "mx2.example.test", T + 30_000);
    const later = await listNodes(db, T + NODE_ALIVE_MS + 10_000);
    expect(later).toEqual([
      { hostname: "mx1.example.test", started_at: T + 1_000, last_seen: T + 1_000, alive: false },
      { hostname: "mx2.example.test", started_at: T, last_seen: T + 30_000, alive: true },
    ]);
    expect(await nodeHostnames(db, "mx0.example.test")).toEqual(["mx0.example.test", "mx1.example.test", "mx2.example.test"]);
    await forgetNode(db, "MX1.example.test");
    expect((await listNodes(db, T)).map((n) => n.hostname)).toEqual(["mx2.example.test"]);
    const missing = await forgetNode(db, "mx1.example.test").catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(UserError);
    expect((missing as UserError).message).toBe("no node named mx1.example.test is registered");
  });
});

// Only PostgreSQL counts sessions in the database (one server on SQLite counts in memory).
describe("sessions per node on postgres", () => {
  test("a sender's open sessions add up over live nodes; a dead node's are left out, and cleared when it starts again", async () => {
    const { db } = await freshStore("postgres");
    await registerNode(db, "a.test", T);
    await registerNode(db, "b.test", T);
    /** Opens one session of `key` on `node`; the sessions of `key` on live nodes after it, at `now`. */
    const open = async (node: string, key: string, now = T) => {
      await openNodeSession(db, node, key);
      return liveSessions(db, key, now);
    };
    expect(await open("a.test", "192.0.2.1")).toBe(1);
    expect(await open("b.test", "192.0.2.1")).toBe(2);
    expect(await open("b.test", "192.0.2.1")).toBe(3);
    expect(await open("a.test", "192.0.2.99")).toBe(1);
    await closeNodeSession(db, "b.test", "192.0.2.1");
    expect(await open("a.test", "192.0.2.1")).toBe(3);
    // b stops refreshing: after NODE_ALIVE_MS its sessions no longer count.
    await touchNode(db, "a.test", T + NODE_ALIVE_MS + 1);
    expect(await open("a.test", "192.0.2.1", T + NODE_ALIVE_MS + 1)).toBe(3);
    await registerNode(db, "b.test", T + NODE_ALIVE_MS + 2);
    expect(await open("b.test", "192.0.2.1", T + NODE_ALIVE_MS + 2)).toBe(4);
    // Closing every session leaves no row behind.
    for (let n = 0; n < 3; n++) await closeNodeSession(db, "a.test", "192.0.2.1");
    await closeNodeSession(db, "b.test", "192.0.2.1");
    expect(await db.selectFrom("node_sessions").select(["node", "sender_key", "count"]).execute()).toEqual([{ node: "a.test", sender_key: "192.0.2.99", count: 1 }]);
  });
});

describe("records naming every node", () => {
  const input = { domain: "example.test", hostname: "mx1.example.test", srsDomain: "mx1.example.test", dkimKeys: [], mtaStsMode: "enforce" as const };

  test("the MTA-STS policy has one mx line per node, and its id changes with the list", () => {
    const two = mtaStsPolicy(["mx1.example.test", "mx2.example.test"], "enforce");
    expect(parsePolicy(two)).toMatchObject({ mode: "enforce", mx: ["mx1.example.test", "mx2.example.test"] });
    expect(mtaStsId(two)).not.toBe(mtaStsId(mtaStsPolicy(["mx1.example.test"], "enforce")));
  });

  test("one MX line per node at equal preference, and each node's SPF as the SRS domain", () => {
    const lines = domainRecords({ ...input, nodes: ["mx1.example.test", "mx2.example.test"], subdomains: true }).map(zoneLine);
    expect(lines.filter((l) => l.includes(" IN MX "))).toEqual([
      "example.test. 3600 IN MX 10 mx1.example.test.",
      "example.test. 3600 IN MX 10 mx2.example.test.",
      "*.example.test. 3600 IN MX 10 mx1.example.test.",
      "*.example.test. 3600 IN MX 10 mx2.example.test.",
    ]);
    expect(lines).toContain('mx1.example.test. 3600 IN TXT "v=spf1 a -all"');
    expect(lines).toContain('mx2.example.test. 3600 IN TXT "v=spf1 a -all"');
    const shared = domainRecords({ ...input, srsDomain: "bounces.example.test", nodes: ["mx1.example.test", "mx2.example.test"] }).map(zoneLine);
    expect(shared).toContain('bounces.example.test. 3600 IN TXT "v=spf1 a:mx1.example.test a:mx2.example.test -all"');
    expect(shared.filter((l) => l.startsWith("bounces.example.test. 3600 IN MX"))).toHaveLength(2);
  });
});

test("on SQLite a server started under a new hostname replaces the old one: one node", async () => {
  const { db } = await freshStore("sqlite");
  await registerNode(db, "old.example.test", T);
  await registerNode(db, "new.example.test", T + 1);
  expect((await listNodes(db, T + 1)).map((n) => n.hostname)).toEqual(["new.example.test"]);
});

test("on SQLite the one server is the one node, and counts its sessions in memory (no row per session)", async () => {
  const dns: DnsServer = await startDnsServer({});
  const mf = await startMailferry({ dns });
  try {
    const db = mf.appliance.store.db;
    expect((await listNodes(db, Date.now())).map((n) => [n.hostname, n.alive])).toEqual([[mf.appliance.config.hostname, true]]);
    const { talk, greeting } = await SmtpTalk.connect(mf.smtpPort);
    expect(greeting.code).toBe(220);
    expect(await db.selectFrom("node_sessions").selectAll().execute()).toEqual([]);
    talk.close();
  } finally {
    await mf.stop();
    await dns.close();
  }
});
