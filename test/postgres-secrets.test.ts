// The keys nodes sign with, shared through PostgreSQL (docs/multi-node.md):
// two `mailferry serve` nodes on one database, no key file copied between
// them. A first node that ran before the keys were shared brings its srs.key
// into the database; the second node, started on an empty data dir, uses it:
// a bounce to a sender address rewritten by one node is accepted by the other,
// and a verification link mailed by one node (or by a CLI command) confirms
// on the other. Two nodes making a key at once agree on one; on SQLite the
// file stays the key.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DATABASE_FILE, openDatabase, openStore, type Store } from "../src/store/db.ts";
import { ALERTS_WEBHOOK_SECRET_FILE, loadSharedSecret, SRS_SECRET_FILE, VERIFY_SECRET_FILE } from "../src/store/secrets.ts";
import { createToken } from "../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { nodeEnv, type Postgres, startPostgres } from "./support/postgres.ts";
import { nodeCli, type ServeProcess, startServe, stopAll } from "./support/serve-process.ts";
import { type Sink, type SinkMessage, startSink } from "./support/sink.ts";
import { SmtpTalk } from "./support/smtp-client.ts";
import { waitFor } from "./support/wait.ts";

const FIRST_NODE_SRS_KEY = "the-first-nodes-key-from-before-sharing";
const LINKS = "http://links.multi.test/";

let postgres: Postgres;
let dns: DnsServer;
let sink: Sink;
let store: Store;
let databaseUrl: string;
// Two nodes and a third data dir for a CLI command on a machine that never ran a node.
const dirs = [0, 1, 2].map((n) => mkdtempSync(join(tmpdir(), `mailferry-keys-${n}-`)));
const nodes: ServeProcess[] = [];

const env = (node: number) => ({
  ...nodeEnv({ dataDir: dirs[node]!, databaseUrl, hostname: `mx${node + 1}.multi.test`, dnsAddress: dns.address, sinkPort: sink.port }),
  // One bounce domain for both nodes (its MX lists both), as docs/multi-node.md sets up.
  MAILFERRY_SRS_DOMAIN: "bounces.multi.test",
  MAILFERRY_GREYLIST_DELAY: "0",
  MAILFERRY_VERIFY_DESTINATIONS: "all",
  MAILFERRY_HTTP_PUBLIC_URL: LINKS,
});

beforeAll(async () => {
  postgres = await startPostgres();
  databaseUrl = await postgres.createDatabase();
  sink = await startSink({ host: "127.0.0.2", tls: "none" });
  dns = await startDnsServer({
    "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
    "sender.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
    "mx.dest.test": { A: [sink.host] },
  });
  // The first node ran on its own before: its data dir has the SRS key its bounces were signed with.
  writeFileSync(join(dirs[0]!, SRS_SECRET_FILE), FIRST_NODE_SRS_KEY + "\n", { mode: 0o600 });
  nodes.push(await startServe(env(0)));
  nodes.push(await startServe(env(1)));
  store = await openDatabase(databaseUrl);
  await nodeCli({ dataDir: dirs[0]!, env: env(0) }, ["domain", "add", "multi.test"]);
}, 120_000);

afterAll(() => stopAll([...nodes, store, sink, dns, postgres], dirs));

/** One SMTP transaction on `node`: the RCPT reply, then the DATA reply when RCPT was accepted. */
async function send(node: number, from: string, rcpt: string, subject: string): Promise<string> {
  const { talk } = await SmtpTalk.connect(nodes[node]!.smtpPort);
  try {
    await talk.send("EHLO client.test");
    await talk.send(`MAIL FROM:<${from}>`);
    const r = await talk.send(`RCPT TO:<${rcpt}>`);
    if (r.code !== 250) return `${r.code} ${r.text}`;
    await talk.send("DATA");
    const d = await talk.send(`From: alice@sender.test\r\nTo: ${rcpt}\r\nSubject: ${subject}\r\nMessage-ID: <${crypto.randomUUID()}@sender.test>\r\n\r\nhello\r\n.`);
    return `${d.code}`;
  } finally {
    talk.close();
  }
}

async function arrived(text: string): Promise<SinkMessage> {
  const found = await waitFor(() => sink.messages.find((m) => m.raw.toString().includes(text)), 15_000);
  if (!found) throw new Error(`no message with ${text} at the sink`);
  return found;
}
const linkIn = (raw: Buffer) => /https?:\/\/\S+\/verify\/[A-Za-z0-9_.-]+/.exec(raw.toString().replace(/=\r?\n/g, ""))![0];

test("the first node's key is the database's; the second node's data dir gets a copy, not a new one", async () => {
  const rows = await store.db.selectFrom("secrets").select(["name", "value"]).orderBy("name").execute();
  expect(rows.map((r) => r.name)).toEqual([ALERTS_WEBHOOK_SECRET_FILE, SRS_SECRET_FILE, VERIFY_SECRET_FILE].sort());
  expect(rows.find((r) => r.name === SRS_SECRET_FILE)!.value).toBe(FIRST_NODE_SRS_KEY);
  for (const file of [SRS_SECRET_FILE, VERIFY_SECRET_FILE]) {
    expect(readFileSync(join(dirs[1]!, file), "utf8")).toBe(readFileSync(join(dirs[0]!, file), "utf8"));
  }
});

test("a verification link mailed by one node confirms on the other", async () => {
  const { token } = await createToken(store.db, "keys", "write");
  const added = await fetch(`${nodes[0]!.httpUrl}/api/v1/destinations`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ address: "me@dest.test" }) });
  expect(added.status).toBeLessThan(300);
  const mail = await arrived("Subject: Confirm forwarding to me@dest.test");
  const confirmed = await fetch(linkIn(mail.raw).replace(LINKS, `${nodes[1]!.httpUrl}/`), { method: "POST" });
  expect(await confirmed.text()).toContain("Mail will now be forwarded to me@dest.test");
  expect(confirmed.status).toBe(200);
}, 30_000);

test("a bounce to a sender address rewritten by one node is accepted by the other", async () => {
  // To the destination the previous test confirmed (verify_destinations = all).
  await nodeCli({ dataDir: dirs[0]!, env: env(0) }, ["alias", "add", "multi.test", "hello", "me@dest.test"]);
  expect(await send(0, "alice@sender.test", "hello@multi.test", "to be bounced")).toBe("250");
  const copy = await arrived("Subject: to be bounced");
  expect(copy.mailFrom).toMatch(/^SRS0=.*@bounces\.multi\.test$/);
  expect(await send(1, "", copy.mailFrom, "the bounce")).toBe("250");
  const back = await arrived("Subject: the bounce");
  expect(back.rcptTo).toEqual(["alice@sender.test"]);
}, 30_000);

test("a link from a CLI command on a machine with no key file confirms on a node", async () => {
  await nodeCli({ dataDir: dirs[2]!, env: env(2) }, ["destination", "add", "cli@dest.test"]);
  const mail = await arrived("Subject: Confirm forwarding to cli@dest.test");
  const confirmed = await fetch(linkIn(mail.raw).replace(LINKS, `${nodes[0]!.httpUrl}/`), { method: "POST" });
  expect(await confirmed.text()).toContain("Mail will now be forwarded to cli@dest.test");
  expect(readFileSync(join(dirs[2]!, VERIFY_SECRET_FILE), "utf8")).toBe(readFileSync(join(dirs[0]!, VERIFY_SECRET_FILE), "utf8"));
}, 30_000);

test("two nodes that make a key at the same moment agree on one", async () => {
  const fresh = [0, 1].map(() => mkdtempSync(join(tmpdir(), "mailferry-keys-race-")));
  try {
    const values = await Promise.all(fresh.map((dir) => loadSharedSecret(store.db, dir, "race.key")));
    expect(values[1]).toBe(values[0]!);
    for (const dir of fresh) expect(readFileSync(join(dir, "race.key"), "utf8")).toBe(`${values[0]}\n`);
  } finally {
    for (const dir of fresh) rmSync(dir, { recursive: true, force: true });
  }
});

test("on SQLite the key stays the data dir's file, and the database holds none", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-keys-sqlite-"));
  const sqlite = await openStore(join(dir, DATABASE_FILE));
  try {
    writeFileSync(join(dir, SRS_SECRET_FILE), "the-file-key\n", { mode: 0o600 });
    expect(await loadSharedSecret(sqlite.db, dir, SRS_SECRET_FILE)).toBe("the-file-key");
    expect(await sqlite.db.selectFrom("secrets").selectAll().execute()).toEqual([]);
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
