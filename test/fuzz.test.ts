// Fuzzing, bounded (issue 17): a fixed-seed corpus of malformed SMTP commands,
// addresses, headers and MIME, and of malformed API and form bodies, sent to a
// real `mailferry serve` process. Every SMTP command gets a reply (a session
// ends only after 221 or 421, RFC 5321 §3.8), every HTTP request a status
// below 500, the process stays up and its memory stays within bounds.
// About 4,400 cases (1,600 command lines, 720 address commands, 240 messages
// to a forwarding and a webhook alias, 700 API and 500 form requests), drawn
// from SEED before anything runs, in about 30 s. The summary it prints counts
// the replies and the DATA reasons; a failure names each case that failed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAdmin, createSession } from "../src/store/admins.ts";
import { importAliases, listAliases } from "../src/store/aliases.ts";
import { DATABASE_FILE, openStore } from "../src/store/db.ts";
import { preparePrivateDataDir } from "../src/store/data-dir.ts";
import { addDomain } from "../src/store/domains.ts";
import { createToken } from "../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { dataPayload, type OddBody, oddAddress, oddCommand, oddFormBody, oddJsonBody, oddMessage, type Random, seededRandom } from "./support/fuzz-corpus.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { SmtpTalk } from "./support/smtp-client.ts";
import { type ServeProcess, startServe } from "./support/serve-process.ts";

const SEED = 17;
/** Senders run in parallel, each from its own loopback address (limits are per sender). */
const CLIENT_IPS = ["127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"];
const MAX_SIZE = 1024 * 1024;
/** Peak RSS of the whole process during the run, and growth from the warmed-up start to the end. */
const RSS_BOUND_KB = { peak: 450 * 1024, growth: 150 * 1024 };

/** The serve process, and the reasons of its DATA answers for the report. */
type Server = ServeProcess & { dataReasons: string[] };

let dns: DnsServer;
let sink: Sink;
let webhook: ReturnType<typeof Bun.serve>;
let dataDir: string;
let server: Server;
let cookie: string;
let csrf: string;
let token: string;
let aliasId: number;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  webhook = Bun.serve({ hostname: "127.0.0.3", port: 0, fetch: async (req) => (await req.arrayBuffer(), new Response("ok")) });
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: [sink.host] }, "hooks.test": { A: ["127.0.0.3"] } });
  dataDir = mkdtempSync(join(tmpdir(), "mailferry-fuzz-"));
  await prepareData();
  server = await startServer();
});

afterAll(async () => {
  server?.proc.kill("SIGKILL");
  await server?.proc.exited;
  await sink?.close();
  webhook?.stop(true);
  await dns?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The domain, a forwarding and a webhook alias, an admin session and an admin API token, written before the server starts. */
async function prepareData() {
  preparePrivateDataDir(dataDir);
  const store = await openStore(join(dataDir, DATABASE_FILE));
  try {
    await addDomain(store.db, "fuzz.test");
    const report = await importAliases(store.db, "fuzz.test", `forward-email=fwd:someone@dest.test,hook:http://hooks.test:${webhook.port}/h`, { apply: true, allowPrivateWebhooks: true });
    if (!report.applied) throw new Error(JSON.stringify(report.errors));
    aliasId = (await listAliases(store.db, "fuzz.test")).find((a) => a.pattern === "fwd")!.id;
    const admin = await createAdmin(store.db, "fuzzer", "a long enough password");
    const session = await createSession(store.db, admin.id, "127.0.0.1", "fuzz");
    cookie = `mf_session=${session.token}`;
    csrf = session.csrf;
    token = (await createToken(store.db, "fuzz", "admin")).token;
  } finally {
    await store.close();
  }
}

async function startServer(): Promise<Server> {
  const env = {
    MAILFERRY_DATA_DIR: dataDir,
    MAILFERRY_HOSTNAME: "mx.fuzz.test",
    MAILFERRY_SMTP_PORT: "0",
    MAILFERRY_HTTP_PORT: "0",
    MAILFERRY_SMTP_MAX_SIZE: String(MAX_SIZE),
    MAILFERRY_DNS_SERVERS: dns.address,
    MAILFERRY_DNS_TIMEOUT: "1s",
    MAILFERRY_OUTBOUND_PORT: String(sink.port),
    MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true",
    MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true",
    MAILFERRY_GREYLIST_DELAY: "0",
    MAILFERRY_VERIFY_DESTINATIONS: "false",
    MAILFERRY_LIMITS_CONNECTIONS_PER_HOUR: "1000000",
    MAILFERRY_API_RATE_LIMIT: "1000000",
    MAILFERRY_LOG_FORMAT: "json",
  };
  const dataReasons: string[] = [];
  const served = await startServe(env, (line) => {
    if (line.event === "smtp.verdict" && line.stage === "data") dataReasons.push(String(line.reason));
  });
  return { ...served, dataReasons };
}

const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.proc.pid}/status`, "utf8"))?.[1] ?? 0);

// --- SMTP ---------------------------------------------------------------------------------

/** What went wrong, one line per case, and counts of the replies seen (for the report). */
const failures: string[] = [];
const replies = new Map<string, number>();
const count = (key: string) => replies.set(key, (replies.get(key) ?? 0) + 1);

/**
 * Sends each line in one session and expects a reply to each; after a 221 or
 * 421 the server may close, and the remaining lines go to a new session.
 */
async function commandSession(ip: string, label: string, lines: Buffer[]) {
  let talk: SmtpTalk | null = null;
  for (const [i, line] of lines.entries()) {
    try {
      if (!talk) talk = await connect(ip);
      talk.write(Buffer.concat([line, Buffer.from("\r\n")]));
      const reply = await talk.next(10_000);
      count(`${label} ${reply.code}`);
      if (reply.code === 221 || reply.code === 421) talk = (talk.close(), null);
    } catch (err) {
      failures.push(`${label} #${i} ${JSON.stringify(line.subarray(0, 80).toString("latin1"))}: ${(err as Error).message}`);
      talk = (talk?.close(), null);
    }
  }
  talk?.close();
}

async function connect(ip: string): Promise<SmtpTalk> {
  const { talk, greeting } = await SmtpTalk.connect(server.smtpPort, "127.0.0.1", ip);
  if (greeting.code !== 220) throw new Error(`greeting ${greeting.code} ${greeting.text}`);
  const ehlo = await talk.send("EHLO fuzz-client.test");
  if (ehlo.code !== 250) throw new Error(`EHLO ${ehlo.code} ${ehlo.text}`);
  return talk;
}

/** One message in one session to `rcpt`: every step must be answered, DATA with any final reply. */
async function messageSession(ip: string, rcpt: string, message: Buffer, label: string) {
  let talk: SmtpTalk | null = null;
  try {
    talk = await connect(ip);
    const mail = await talk.send("MAIL FROM:<alice@sender.test>");
    const to = await talk.send(`RCPT TO:<${rcpt}>`);
    if (mail.code !== 250 || to.code !== 250) throw new Error(`envelope refused: ${mail.code}, ${to.code} ${to.text}`);
    const data = await talk.send("DATA");
    if (data.code !== 354) throw new Error(`DATA ${data.code}`);
    talk.write(dataPayload(message));
    const reply = await talk.next(30_000);
    count(`${label} ${reply.code}`);
  } catch (err) {
    failures.push(`${label} (${message.length} bytes, starts ${JSON.stringify(message.subarray(0, 60).toString("latin1"))}): ${(err as Error).message}`);
  } finally {
    talk?.close();
  }
}

/** Runs the cases on one worker per client address. */
async function inParallel<T>(cases: T[], task: (ip: string, item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    CLIENT_IPS.map(async (ip) => {
      while (next < cases.length) await task(ip, cases[next++]!);
    }),
  );
}

// --- HTTP ---------------------------------------------------------------------------------

/** Sends a body; any answer below 500 is fine (a redirect, a page with field errors, a 4xx). */
async function request(method: string, path: string, { contentType, body }: OddBody, headers: Record<string, string>) {
  try {
    const res = await fetch(server.httpUrl + path, { method, body: method === "GET" || method === "DELETE" ? undefined : body, headers: { ...headers, ...(contentType ? { "content-type": contentType } : {}) }, redirect: "manual", signal: AbortSignal.timeout(15_000) });
    await res.arrayBuffer();
    count(`http ${Math.floor(res.status / 100)}xx`);
    if (res.status >= 500) failures.push(`${method} ${path} (${contentType}, ${describe(body)}): HTTP ${res.status}`);
  } catch (err) {
    failures.push(`${method} ${path} (${contentType}, ${describe(body)}): ${(err as Error).message}`);
  }
}

const describe = (body: string | Uint8Array) => (typeof body === "string" ? JSON.stringify(body.slice(0, 60)) + (body.length > 60 ? `… ${body.length} chars` : "") : `${body.length} bytes`);

/** API routes taking a body, and path parameters that are odd (never the real domain or alias for a delete). */
function apiCase(r: Random): [string, string] {
  const odd = encodeURIComponent(r.pick(["fuzz.test", "-1", "0", "abc", "99999999999999999999", "\u0000", "a%2Fb", "x".repeat(300), "..", "1e3"]));
  const oddDelete = encodeURIComponent(r.pick(["nope.test", "-1", "abc", "99999999999999999999", "x".repeat(300), ".."]));
  return r.pick<[string, string]>([
    ["POST", "/domains"],
    ["PATCH", `/domains/${odd}`],
    ["POST", `/domains/${odd}/webhook-key`],
    ["POST", `/domains/${odd}/dkim-rotate`],
    ["POST", "/aliases"],
    ["PATCH", `/aliases/${r.pick([String(aliasId), odd])}`],
    ["POST", "/aliases/test"],
    ["POST", "/aliases/import"],
    ["GET", `/aliases/export?domain=${odd}`],
    ["GET", `/log?limit=${odd}&cursor=${odd}`],
    ["GET", `/stats?days=${odd}`],
    ["POST", "/destinations"],
    ["POST", `/destinations/${odd}/resend`],
    ["POST", "/addresses"],
    ["POST", "/denylist"],
    ["POST", "/allowlist"],
    ["PATCH", "/settings"],
    ["PUT", "/settings"],
    ["POST", "/tokens"],
    ["DELETE", `/${r.pick(["domains", "aliases", "destinations", "denylist", "allowlist", "tokens"])}/${oddDelete}`],
  ]);
}

/** Admin UI form routes (the session's own logout and revocations left out). */
function formCase(r: Random): string {
  return r.pick(["/domains", "/domains/fuzz.test/settings", "/domains/nope.test/settings", "/aliases", "/aliases/import", `/aliases/${aliasId}`, `/aliases/${aliasId}/vacation`, "/aliases/abc", "/lists/deny", "/lists/allow", "/lists/greylist/delete", "/destinations", "/destinations/confirm", "/destinations/resend", "/api-access", "/settings", "/account/totp/confirm", "/login", "/setup", "/verify/garbage"]);
}

/** The whole corpus, drawn in a fixed order before anything runs in parallel, so the seed alone decides it. */
function generateCorpus(r: Random) {
  const lines = (n: number, make: () => string | Buffer) => Array.from({ length: n }, () => Buffer.from(make()));
  return {
    commands: Array.from({ length: 160 }, () => lines(10, () => oddCommand(r))),
    addresses: Array.from({ length: 120 }, () => [Buffer.from(`MAIL FROM:<${oddAddress(r)}>`), ...lines(4, () => `RCPT TO:<${oddAddress(r)}>${r.chance(0.2) ? " NOTIFY=NEVER" : ""}`), Buffer.from("RSET")]),
    messages: Array.from({ length: 240 }, (_, i): [string, Buffer, string] => {
      const [rcpt, label] = i % 2 ? ["hook@fuzz.test", "webhook"] : ["fwd@fuzz.test", "forward"];
      // Every 40th is over the size limit: 552, and nothing of it kept.
      return i % 40 === 39 ? [rcpt, Buffer.alloc(MAX_SIZE + 4096, "a\r\n"), "oversize"] : [rcpt, oddMessage(r, rcpt, i + 1), label];
    }),
    api: Array.from({ length: 700 }, (): [string, string, OddBody] => [...apiCase(r), oddJsonBody(r)]),
    forms: Array.from({ length: 500 }, (): [string, OddBody] => [formCase(r), oddFormBody(r, csrf)]),
  };
}

// --- the run ------------------------------------------------------------------------------

test("a seeded corpus of malformed SMTP and HTTP input: every case answered, the process up, memory bounded", async () => {
  const r = seededRandom(SEED);
  const corpus = generateCorpus(r);
  const apiHeaders = { authorization: `Bearer ${token}` };
  const formHeaders = { cookie };
  // Warm up every path once, so that the baseline includes what any first use loads.
  await messageSession(CLIENT_IPS[0]!, "fwd@fuzz.test", oddMessage(r, "fwd@fuzz.test", 0), "warm-up");
  await messageSession(CLIENT_IPS[0]!, "hook@fuzz.test", oddMessage(r, "hook@fuzz.test", 0), "warm-up");
  await request("POST", "/api/v1/aliases/test", oddJsonBody(r), apiHeaders);
  await request("POST", "/aliases", oddFormBody(r, csrf), formHeaders);
  await Bun.sleep(500);
  const before = rssKb();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKb())), 100);
  const started = performance.now();
  try {
    await inParallel(corpus.commands, (ip, lines) => commandSession(ip, "command", lines));
    await inParallel(corpus.addresses, (ip, lines) => commandSession(ip, "address", lines));
    await inParallel(corpus.messages, (ip, [rcpt, message, label]) => messageSession(ip, rcpt, message, label));
    await inParallel(corpus.api, (ip, [method, path, body]) => request(method, `/api/v1${path}`, body, apiHeaders));
    await inParallel(corpus.forms, (ip, [path, body]) => request("POST", path, body, formHeaders));
  } finally {
    clearInterval(sampler);
  }
  await Bun.sleep(500);
  const after = rssKb();
  const summary = { seconds: Math.round((performance.now() - started) / 1000), rssMb: { before: mb(before), peak: mb(peak), after: mb(after) }, replies: Object.fromEntries([...replies].sort()), dataReasons: tally(server.dataReasons), errorLog: tally(server.errors) };
  console.log("fuzz summary", JSON.stringify(summary, null, 1));

  expect(failures).toEqual([]);
  // A hook that throws answers 421 and logs an error: the reply is safe, but the input found a bug.
  expect(server.errors).toEqual([]);
  expect(server.proc.exitCode).toBeNull();
  expect(replies.get("oversize 552")).toBe(corpus.messages.filter(([, , label]) => label === "oversize").length);
  expect((await fetch(`${server.httpUrl}/healthz`)).status).toBe(200);
  expect(peak).toBeLessThan(RSS_BOUND_KB.peak);
  expect(after - before).toBeLessThan(RSS_BOUND_KB.growth);
  // Still forwarding: an ordinary message reaches the destination.
  const delivered = sink.messages.length;
  await messageSession(CLIENT_IPS[0]!, "fwd@fuzz.test", Buffer.from(`From: <alice@sender.test>\r\nTo: fwd@fuzz.test\r\nSubject: after\r\nMessage-ID: <after@sender.test>\r\n\r\nstill here\r\n`), "after");
  expect(replies.get("after 250")).toBe(1);
  expect(sink.messages.length).toBe(delivered + 1);
}, 120_000);

const mb = (kb: number) => Math.round(kb / 1024);
const tally = (items: string[]) => items.reduce<Record<string, number>>((t, i) => ((t[i] = (t[i] ?? 0) + 1), t), {});
