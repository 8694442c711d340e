// Two `mailferry serve` nodes on one PostgreSQL, as two MX hosts of a domain
// (docs/multi-node.md): a sender's retry may reach either node, so the targets
// a message already reached are remembered in the shared database, and no
// message is lost or doubled when a node dies under load (SIGKILL) while the
// senders retry on the other node.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { nodeEnv, type Postgres, startPostgres } from "./support/postgres.ts";
import { nodeCli, type ServeProcess, startServe } from "./support/serve-process.ts";
import { type Sink, startSinks } from "./support/sink.ts";
import { sendMail } from "./support/smtp-client.ts";

/** Messages of the kill test, and the senders sending them at once. */
const LOAD_MESSAGES = 60;
const SENDERS = 4;

let postgres: Postgres;
let dns: DnsServer;
let one: Sink;
let two: Sink;
let databaseUrl: string;
/** While true, the second destination defers every recipient, as a greylisting MX does. */
let twoDefers = true;
const dirs = [0, 1].map((n) => mkdtempSync(join(tmpdir(), `mailferry-failover-${n}-`)));
const nodes: ServeProcess[] = [];

beforeAll(async () => {
  postgres = await startPostgres();
  databaseUrl = await postgres.createDatabase();
  [one, two] = (await startSinks([
    { host: "127.0.0.2", tls: "none" },
    { host: "127.0.0.3", tls: "none", onRcpt: () => (twoDefers ? { code: 451, text: "4.7.1 Greylisted, please try again" } : undefined) },
  ])) as [Sink, Sink];
  dns = await startDnsServer({
    "one.test": { MX: [{ priority: 10, exchange: "mx.one.test" }] },
    "mx.one.test": { A: [one.host] },
    "two.test": { MX: [{ priority: 10, exchange: "mx.two.test" }] },
    "mx.two.test": { A: [two.host] },
  });
  const cli = (args: string[]) => nodeCli({ dataDir: dirs[0]!, env: env(0) }, args);
  await cli(["domain", "add", "multi.test"]);
  await cli(["alias", "add", "multi.test", "pair", "a@one.test", "b@two.test"]);
  await cli(["alias", "add", "multi.test", "load", "load@one.test"]);
  for (const node of [0, 1]) nodes.push(await startServe(env(node)));
}, 120_000);

afterAll(async () => {
  for (const node of nodes) await node.kill();
  await Promise.all([one, two].map((sink) => sink?.close()));
  await dns?.close();
  await postgres?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const env = (node: number) => ({
  ...nodeEnv({ dataDir: dirs[node]!, databaseUrl, hostname: `mx${node + 1}.multi.test`, dnsAddress: dns.address, sinkPort: one.port }),
  // Neither greylisting nor the per-sender limits are under test here: the load would meet them.
  MAILFERRY_GREYLIST_DELAY: "0",
  MAILFERRY_LIMITS_CONNECTIONS_PER_HOUR: "100000",
});

const message = (id: string, to: string) =>
  `From: Alice <alice@sender.test>\r\nTo: ${to}\r\nSubject: ${id}\r\nMessage-ID: <${id}@sender.test>\r\nDate: Tue, 01 Dec 2026 12:00:00 +0000\r\n\r\nHello ${id}\r\n`;

/** The SMTP answer to sending `raw` through `node`: "250 …", "451 …", or "error: …" when the connection failed. */
async function send(node: ServeProcess, to: string, raw: string): Promise<string> {
  return sendMail(node.smtpPort, { from: "alice@sender.test", to, raw }).then(
    (info) => String(info.response),
    (err) => (err.responseCode ? `${err.responseCode} ${String(err.response).replace(/^\d{3} /, "")}` : `error: ${err.code ?? err.message}`),
  );
}

const copiesOf = (sink: Sink, id: string) => sink.messages.filter((m) => m.raw.toString().includes(`Message-ID: <${id}@sender.test>`));

test("a retry that reaches the other node delivers only the targets the first node did not reach", async () => {
  const raw = message("split", "pair@multi.test");
  expect(await send(nodes[0]!, "pair@multi.test", raw)).toBe("451 4.7.1 Greylisted, please try again");
  expect(copiesOf(one, "split")).toHaveLength(1);
  expect(copiesOf(two, "split")).toHaveLength(0);
  twoDefers = false;
  expect(await send(nodes[1]!, "pair@multi.test", raw)).toStartWith("250");
  expect(copiesOf(one, "split")).toHaveLength(1);
  expect(copiesOf(two, "split").map((m) => m.rcptTo)).toEqual([["b@two.test"]]);
}, 30_000);

/**
 * A sender that tries each message on one node and, after a temporary answer
 * or a broken connection, on the other (as an MTA walks a domain's MX hosts);
 * resolves with the attempts it made, throws on a permanent refusal.
 */
async function sendUntilAccepted(id: string, firstNode: number): Promise<number> {
  const raw = message(id, "load@multi.test");
  for (let attempt = 0; attempt < 20; attempt++) {
    const answer = await send(nodes[(firstNode + attempt) % 2]!, "load@multi.test", raw);
    if (answer.startsWith("2")) return attempt + 1;
    if (answer.startsWith("5")) throw new Error(`${id}: ${answer}`);
    await Bun.sleep(20);
  }
  throw new Error(`${id}: not accepted after 20 attempts`);
}

test("kill -9 of one node under load while senders retry on the other: every message arrives exactly once", async () => {
  const started = Date.now();
  let accepted = 0;
  let killed: Promise<void> | undefined;
  const attempts: number[] = [];
  const ids = Array.from({ length: LOAD_MESSAGES }, (_, n) => `load-${n}`);
  const queue = ids.map((id, n) => ({ id, firstNode: n % 2 }));
  const sender = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      attempts.push(await sendUntilAccepted(next.id, next.firstNode));
      // Midway, with the other senders' messages in flight on both nodes.
      if (++accepted === LOAD_MESSAGES / 2) killed = nodes[0]!.kill();
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  await killed;
  // Every sender has its 250; a copy sent twice would have arrived by now.
  await Bun.sleep(500);
  const arrived = one.messages.map((m) => /^Message-ID: <(load-\d+)@/im.exec(m.raw.toString())?.[1]).filter((id) => id !== undefined);
  const counts = new Map(ids.map((id) => [id, arrived.filter((a) => a === id).length]));
  expect([...counts].filter(([, count]) => count !== 1)).toEqual([]);
  expect(arrived).toHaveLength(LOAD_MESSAGES);
  // Some sender met the dead node and went on to the other.
  expect(attempts.some((n) => n > 1)).toBe(true);
  expect(nodes[1]!.errors).toEqual([]);
  console.log(`${LOAD_MESSAGES} messages, ${attempts.reduce((a, b) => a + b, 0)} attempts, node 1 killed after ${LOAD_MESSAGES / 2}; ${Date.now() - started} ms`);
}, 60_000);
