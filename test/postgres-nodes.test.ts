// Two `mailferry serve` nodes on one PostgreSQL (docs/operations.md,
// "PostgreSQL"): what one node (or a CLI command) changes, the other sees; a
// greylist pass and a sender's rate count are shared; a queued message is sent
// by exactly one node; and when the node holding the background-job locks is
// killed with SIGKILL, the other takes them and runs the queue alone.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type Store } from "../src/store/db.ts";
import { enqueue } from "../src/store/deliveries.ts";
import { JOB_KINDS } from "../src/store/job-locks.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { nodeEnv, type Postgres, startPostgres } from "./support/postgres.ts";
import { nodeCli, type ServeProcess, startServe } from "./support/serve-process.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { SmtpTalk } from "./support/smtp-client.ts";
import { waitUntil } from "./support/wait.ts";

const RATE_LIMIT = 3;

let postgres: Postgres;
let dns: DnsServer;
let sink: Sink;
let store: Store;
let databaseUrl: string;
const dirs = [0, 1].map((n) => mkdtempSync(join(tmpdir(), `mailferry-node-${n}-`)));
const nodes: ServeProcess[] = [];
/** Each node's log events, in order. */
const events: string[][] = [[], []];
const locksTaken = (node: number) => events[node]!.filter((e) => e.startsWith("jobs.lock_taken"));

beforeAll(async () => {
  postgres = await startPostgres();
  databaseUrl = await postgres.createDatabase();
  sink = await startSink({ host: "127.0.0.2", tls: "none" });
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: [sink.host] } });
  await cli(0, ["domain", "add", "multi.test"]);
  for (const alias of ["hello", "counted"]) await cli(0, ["alias", "add", "multi.test", alias, "someone@dest.test"]);
  // One after the other: the first takes every background-job lock.
  for (const node of [0, 1]) nodes.push(await startServe(env(node), (line) => events[node]!.push(`${line.event} ${line.job ?? ""}`.trim())));
  store = await openDatabase(databaseUrl);
}, 120_000);

afterAll(async () => {
  for (const node of nodes) await node.kill();
  await store?.close();
  await sink?.close();
  await dns?.close();
  await postgres?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const env = (node: number) => ({
  ...nodeEnv({ dataDir: dirs[node]!, databaseUrl, hostname: `mx${node + 1}.multi.test`, dnsAddress: dns.address, sinkPort: sink.port }),
  MAILFERRY_GREYLIST_DELAY: "1",
  MAILFERRY_LIMITS_CONNECTIONS_PER_HOUR: String(RATE_LIMIT),
});

const cli = (node: number, args: string[]) => nodeCli({ dataDir: dirs[node]!, env: env(node) }, args);

/** The reply to RCPT TO:<recipient> on `node` in a new session from alice@sender.test. */
async function rcpt(node: number, recipient: string): Promise<{ code: number; text: string }> {
  const { talk } = await SmtpTalk.connect(nodes[node]!.smtpPort);
  try {
    for (const command of ["EHLO client.test", "MAIL FROM:<alice@sender.test>"]) expect((await talk.send(command)).code).toBe(250);
    const reply = await talk.send(`RCPT TO:<${recipient}>`);
    return { code: reply.code, text: reply.text };
  } finally {
    talk.close();
  }
}

test("the first node holds every background-job lock, the second none", async () => {
  await waitUntil("node 1 takes the locks", 5_000, () => locksTaken(0).length === JOB_KINDS.length);
  expect(locksTaken(1)).toEqual([]);
});

test("a greylist triplet learned on one node passes on the other", async () => {
  const first = await rcpt(0, "hello@multi.test");
  expect(first.code).toBe(450);
  await Bun.sleep(1_200);
  expect((await rcpt(1, "hello@multi.test")).code).toBe(250);
}, 30_000);

test("an alias added while both nodes run answers on the other node within a second", async () => {
  // Node 2 has the routing loaded (and cached) without the alias.
  expect((await rcpt(1, "later@multi.test")).code).toBe(550);
  await cli(0, ["alias", "add", "multi.test", "later", "someone@dest.test"]);
  const took = await waitUntil("node 2 accepts the new alias", 1_000, async () => (await rcpt(1, "later@multi.test")).code === 250);
  console.log(`alias seen by the other node after ${took} ms`);
}, 30_000);

test("a sender's connections to one recipient count across both nodes", async () => {
  const texts: string[] = [];
  for (let n = 0; n <= RATE_LIMIT; n++) texts.push((await rcpt(n % 2, "counted@multi.test")).text);
  // Each node saw at most 2 of the 4: only a shared count reaches the limit (a greylisting 450 may come first).
  expect(texts.filter((text) => text.includes("Rate limit"))).toEqual([texts[RATE_LIMIT]!]);
  expect(texts[RATE_LIMIT]).toContain(`more than ${RATE_LIMIT} connections`);
}, 30_000);

const queued = (n: number) => ({ from: "alerts@multi.test", to: ["someone@dest.test"], raw: Buffer.from(`From: alerts@multi.test\r\nTo: someone@dest.test\r\nSubject: queued ${n}\r\nMessage-ID: <queued-${n}@multi.test>\r\n\r\nbody\r\n`) });
const messageIds = () => sink.messages.map((m) => /^Message-ID: (.*)$/im.exec(m.raw.toString())?.[1]?.trim());

test("messages queued while both nodes poll the queue are each sent exactly once", async () => {
  const before = sink.messages.length;
  for (let n = 0; n < 10; n++) await enqueue(store.db, queued(n));
  await sink.waitForMessages(before + 10, 20_000);
  // Both nodes poll every 5 s: a second copy would have come by now.
  await Bun.sleep(6_000);
  const ids = messageIds().filter((id) => id?.startsWith("<queued-"));
  expect(ids.length).toBe(10);
  expect(new Set(ids).size).toBe(10);
  expect(nodes.flatMap((node) => node.errors)).toEqual([]);
}, 60_000);

test("kill -9 of the lock holder: the other node takes every lock and runs the queue", async () => {
  await nodes[0]!.kill();
  const took = await waitUntil("node 2 takes the locks", 10_000, () => locksTaken(1).length === JOB_KINDS.length);
  console.log(`locks taken over ${took} ms after the kill`);
  const before = sink.messages.length;
  await enqueue(store.db, queued(100));
  await sink.waitForMessages(before + 1, 15_000);
  expect(messageIds().filter((id) => id === "<queued-100@multi.test>")).toHaveLength(1);
}, 60_000);
