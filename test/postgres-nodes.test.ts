// Two `mailferry serve` nodes on one PostgreSQL (docs/operations.md,
// "PostgreSQL"): what one node (or a CLI command) changes, the other sees; a
// greylist pass and a sender's rate count are shared; a queued message is sent
// by exactly one node; and when the node holding the background-job locks is
// killed with SIGKILL, the other takes them and runs the queue alone. Both
// nodes are registered, named in the MTA-STS policy and the MX records, and a
// sender's concurrent sessions count over both.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type Store } from "../src/store/db.ts";
import { enqueue } from "../src/store/deliveries.ts";
import { JOB_KINDS } from "../src/store/job-locks.ts";
import { registerNode } from "../src/store/nodes.ts";
import { type DnsRecord, mtaStsId } from "../src/auth/records.ts";
import { parsePolicy } from "mailauth/lib/mta-sts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { nodeEnv, type Postgres, startPostgres } from "./support/postgres.ts";
import { nodeCli, type ServeProcess, startServe, stopAll } from "./support/serve-process.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { SmtpTalk } from "./support/smtp-client.ts";
import { waitUntil } from "./support/wait.ts";

const RATE_LIMIT = 3;
const CONCURRENCY_LIMIT = 4;

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

afterAll(() => stopAll([...nodes, store, sink, dns, postgres], dirs));

const env = (node: number) => ({
  ...nodeEnv({ dataDir: dirs[node]!, databaseUrl, hostname: `mx${node + 1}.multi.test`, dnsAddress: dns.address, sinkPort: sink.port }),
  MAILFERRY_GREYLIST_DELAY: "1",
  MAILFERRY_LIMITS_CONNECTIONS_PER_HOUR: String(RATE_LIMIT),
  MAILFERRY_LIMITS_CONCURRENT_CONNECTIONS: String(CONCURRENCY_LIMIT),
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

test("`node list` shows both nodes, alive", async () => {
  const listed = JSON.parse(await cli(0, ["node", "list", "--json"])) as { hostname: string; alive: boolean }[];
  expect(listed.map((n) => [n.hostname, n.alive])).toEqual([
    ["mx1.multi.test", true],
    ["mx2.multi.test", true],
  ]);
}, 30_000);

/** The MTA-STS policy node `node` serves for multi.test. */
async function policyOf(node: number): Promise<string> {
  const res = await fetch(`${nodes[node]!.httpUrl}/.well-known/mta-sts.txt`, { headers: { host: "mta-sts.multi.test" } });
  expect(res.status).toBe(200);
  return res.text();
}

test("each node serves the MTA-STS policy naming both, and `domain dns` one MX per node with that policy's id", async () => {
  const policy = await policyOf(0);
  expect(await policyOf(1)).toBe(policy);
  expect(parsePolicy(policy).mx).toEqual(["mx1.multi.test", "mx2.multi.test"]);
  const records = JSON.parse(await cli(1, ["domain", "dns", "multi.test", "--json"])) as DnsRecord[];
  expect(records.filter((r) => r.type === "MX" && r.name === "multi.test.").map((r) => r.value)).toEqual(["10 mx1.multi.test.", "10 mx2.multi.test."]);
  expect(records.find((r) => r.name === "_mta-sts.multi.test.")!.value).toBe(`v=STSv1; id=${mtaStsId(policy)}`);
  // Each node's own hostname sends as the SRS domain: both SPF records are listed.
  expect(records.filter((r) => r.value === "v=spf1 a -all").map((r) => r.name)).toEqual(["mx1.multi.test.", "mx2.multi.test."]);
}, 30_000);

test("a third node joins the policy (new id); `node forget` takes it out again and is audited", async () => {
  const before = await policyOf(0);
  await registerNode(store.db, "mx3.multi.test", Date.now());
  const three = await policyOf(1);
  expect(parsePolicy(three).mx).toEqual(["mx1.multi.test", "mx2.multi.test", "mx3.multi.test"]);
  expect(mtaStsId(three)).not.toBe(mtaStsId(before));
  expect(await cli(1, ["node", "forget", "mx3.multi.test"])).toContain("forgot node mx3.multi.test");
  expect(await policyOf(0)).toBe(before);
  const audited = await store.db.selectFrom("audit_log").select(["actor", "target"]).where("action", "=", "node.forget").execute();
  expect(audited).toEqual([{ actor: "cli", target: "mx3.multi.test" }]);
}, 30_000);

test("a sender's concurrent sessions count over both nodes: the next one on either gets 421, closing one frees a slot", async () => {
  const ip = "127.0.0.80";
  const connect = (node: number) => SmtpTalk.connect(nodes[node]!.smtpPort, "127.0.0.1", ip);
  const held = [];
  for (const node of [0, 0, 1, 1]) {
    const session = await connect(node);
    expect(session.greeting.code).toBe(220);
    held.push(session);
  }
  const refused = `421 4.7.0 Too many concurrent connections from ${ip} (at most ${CONCURRENCY_LIMIT}); try again later`;
  for (const node of [0, 1]) {
    const extra = await connect(node);
    expect(`${extra.greeting.code} ${extra.greeting.text}`).toBe(refused);
    extra.talk.close();
  }
  held.shift()!.talk.close();
  const freed = await waitUntil("a slot is free on node 2", 5_000, async () => {
    const next = await connect(1);
    if (next.greeting.code !== 220) next.talk.close();
    else held.push(next);
    return next.greeting.code === 220;
  });
  console.log(`slot freed across nodes after ${freed} ms`);
  const again = await connect(0);
  expect(again.greeting.code).toBe(421);
  again.talk.close();
  for (const session of held) session.talk.close();
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
