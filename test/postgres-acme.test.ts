// ACME with the nodes on one PostgreSQL (docs/multi-node.md), against a real
// CA (pebble): the account key, each hostname's certificate and the pending
// HTTP-01 challenges are in the database. Node A, whose HTTP port the CA
// cannot reach, still gets its certificate: node B, on the port the CA
// validates on, answers A's challenges from the database. A node reinstalled
// with A's hostname on an empty data dir serves A's certificate without a new order.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type Store } from "../src/store/db.ts";
import { ACCOUNT_KEY_FILE, CERT_FILE } from "../src/tls/acme.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { type Pebble, pebbleAcmeEnv, pebbleInstalled, startPebble } from "./support/pebble.ts";
import { freePort } from "./support/ports.ts";
import { nodeEnv, type Postgres, startPostgres } from "./support/postgres.ts";
import { type ServeProcess, startServe, stopAll } from "./support/serve-process.ts";
import { SmtpTalk } from "./support/smtp-client.ts";
import { waitFor } from "./support/wait.ts";

const HOSTS = ["mxa.multi.test", "mxb.multi.test"];

describe.skipIf(!pebbleInstalled())("ACME on PostgreSQL", () => {
  let postgres: Postgres;
  let dns: DnsServer;
  let pebble: Pebble;
  let store: Store;
  let databaseUrl: string;
  /** Where pebble validates HTTP-01: node B's acme.http_port. */
  let validatedPort: number;
  const dirs: string[] = [];
  const nodes: ServeProcess[] = [];
  const logs: Record<string, unknown>[][] = [];

  /** A node with `hostname` on a new, empty data dir; its ACME HTTP listener on `httpPort`. */
  async function startNode(hostname: string, httpPort: number): Promise<number> {
    const dataDir = mkdtempSync(join(tmpdir(), "mailferry-acme-node-"));
    dirs.push(dataDir);
    const lines: Record<string, unknown>[] = [];
    logs.push(lines);
    nodes.push(
      await startServe(
        {
          ...nodeEnv({ dataDir, databaseUrl, hostname, dnsAddress: dns.address, sinkPort: 9 }),
          ...pebbleAcmeEnv(pebble, httpPort),
        },
        (line) => lines.push(line),
      ),
    );
    return nodes.length - 1;
  }
  const events = (node: number, event: string) => logs[node]!.filter((l) => l.event === event);
  const issued = (node: number) => waitFor<Record<string, unknown>>(() => events(node, "acme.issued")[0] ?? events(node, "acme.failed")[0], 30_000);

  /** The certificate STARTTLS on `node` presents. */
  async function served(node: number): Promise<{ serial: string; names: string }> {
    const { talk } = await SmtpTalk.connect(nodes[node]!.smtpPort);
    try {
      await talk.send("EHLO client.test");
      expect((await talk.send("STARTTLS")).code).toBe(220);
      const cert = (await talk.startTls({ rejectUnauthorized: false })).getPeerCertificate();
      return { serial: cert.serialNumber.toLowerCase(), names: cert.subjectaltname ?? "" };
    } finally {
      talk.close();
    }
  }

  beforeAll(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    dns = await startDnsServer(Object.fromEntries(HOSTS.map((h) => [h, { A: ["127.0.0.1"] }])));
    validatedPort = await freePort();
    pebble = await startPebble({ dns, httpPort: validatedPort });
    store = await openDatabase(databaseUrl);
  }, 60_000);

  afterAll(() => stopAll([...nodes, store, pebble, dns, postgres], dirs));

  test("node A, which the CA cannot reach, gets its certificate: node B answers A's challenge from the database", async () => {
    await startNode(HOSTS[1]!, validatedPort);
    const b = await issued(0);
    if (b?.event !== "acme.issued") throw new Error(`node B: ${JSON.stringify(b)}\n${pebble.output().slice(-2000)}`);
    // Node A's own HTTP listener is on a port nothing validates on.
    await startNode(HOSTS[0]!, await freePort());
    const a = await issued(1);
    if (a?.event !== "acme.issued") throw new Error(`node A: ${JSON.stringify(a)}\n${pebble.output().slice(-2000)}`);
    expect(a.names).toEqual([HOSTS[0]]);
    expect((await served(1)).names).toBe(`DNS:${HOSTS[0]}`);
    // Both ordered with the one account key, and left no challenge behind.
    expect(readFileSync(join(dirs[1]!, ACCOUNT_KEY_FILE), "utf8")).toBe(readFileSync(join(dirs[0]!, ACCOUNT_KEY_FILE), "utf8"));
    expect(await store.db.selectFrom("acme_challenges").selectAll().execute()).toEqual([]);
    const rows = await store.db.selectFrom("acme_certificates").select("hostname").orderBy("hostname").execute();
    expect(rows.map((r) => r.hostname)).toEqual(HOSTS);
  }, 90_000);

  test("a node reinstalled with A's hostname on an empty data dir serves A's certificate without ordering", async () => {
    const before = await served(1);
    await nodes[1]!.kill();
    const again = await startNode(HOSTS[0]!, await freePort());
    expect(events(again, "acme.shared_taken")).toHaveLength(1);
    expect(await served(again)).toEqual(before);
    expect(readFileSync(join(dirs[again]!, CERT_FILE), "utf8")).toBe(readFileSync(join(dirs[1]!, CERT_FILE), "utf8"));
    // Several checks (every second) later, still no order.
    await Bun.sleep(2_500);
    expect(events(again, "acme.order")).toEqual([]);
  }, 60_000);

  test("a challenge stored by one node is answered by another node's HTTP listener", async () => {
    // As node A's order would leave it while the CA validates; node B answers on the port the CA reaches.
    await store.db.insertInto("acme_challenges").values({ token: "token-of-a", key_authorization: "token-of-a.thumbprint", created_at: Date.now() }).execute();
    const res = await fetch(`http://127.0.0.1:${validatedPort}/.well-known/acme-challenge/token-of-a`);
    expect(await res.text()).toBe("token-of-a.thumbprint");
    expect((await fetch(`http://127.0.0.1:${validatedPort}/.well-known/acme-challenge/unknown`)).status).toBe(404);
  });
});
