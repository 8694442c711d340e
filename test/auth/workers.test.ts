// The authentication workers: mailauth's verification and the signed, sealed
// copies computed in worker threads, DNS answered by the main thread's
// resolver, and what happens when a worker dies or the pool stops.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authenticate } from "mailauth";
import { dkimSign } from "mailauth/lib/dkim/sign";
import { dkimRecordValue } from "../../src/mail/dkim-key.ts";
import { authenticateInbound } from "../../src/auth/inbound.ts";
import { type AuthWorkers, startAuthWorkers } from "../../src/auth/workers.ts";
import { sharesSeal, withSealOf } from "../../src/delivery/shared-seal.ts";
import { createResolver, type Resolver } from "../../src/dns/resolver.ts";
import { createLogger } from "../../src/log.ts";
import { type MessageParts, openMessage, partsOf } from "../../src/mail/message.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";

const keyPair = () => generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "der" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
const senderKey = keyPair();
const aliasKey = keyPair();
const record = (k: ReturnType<typeof keyPair>) => dkimRecordValue({ algorithm: "rsa", public_key: (k.publicKey as unknown as Buffer).toString("base64") });

let dns: DnsServer;
let resolver: Resolver;
let workers: AuthWorkers;
const logger = createLogger({ level: "error", format: "json", write: () => {} });
const session = { remoteIp: "127.0.0.1", helo: "mail.sender.test", mailFrom: "someone@sender.test" };

beforeAll(async () => {
  dns = await startDnsServer({
    "sender.test": { TXT: ["v=spf1 ip4:127.0.0.1 -all"] },
    "_dmarc.sender.test": { TXT: ["v=DMARC1; p=reject"] },
    "s1._domainkey.sender.test": { TXT: [record(senderKey)] },
    "mailferry._domainkey.alias.test": { TXT: [record(aliasKey)] },
    "_dmarc.alias.test": { TXT: ["v=DMARC1; p=none"] },
  });
  resolver = createResolver({ servers: [{ host: "127.0.0.1", port: dns.port }], timeout: 2000 });
  workers = startAuthWorkers({ hostname: "mx.test", lookup: resolver.forMailauth, logger, size: 2 });
});
afterAll(async () => {
  await workers.close();
  await dns.close();
});

// Not `expect(promise).rejects`: while it waits, bun test does not deliver worker messages.
const failureOf = (promise: Promise<unknown>) => promise.then(() => "resolved", (err: Error) => err.message);

async function signedMessage(subject: string): Promise<MessageParts> {
  const raw = Buffer.from(`From: <someone@sender.test>\r\nTo: <hello@alias.test>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, "")}@sender.test>\r\n\r\nbody of ${subject}\r\n`);
  const key = { signingDomain: "sender.test", selector: "s1", privateKey: senderKey.privateKey as unknown as string };
  const { signatures } = await dkimSign(raw, { ...key, signatureData: [key] });
  return partsOf(Buffer.concat([Buffer.from(signatures), raw]));
}

test("a worker's verdicts equal the main thread's, and its DNS questions go to the main resolver", async () => {
  const raw = await signedMessage("same verdicts");
  const before = resolver.queriesSent;
  const inWorker = await workers.authenticate(session, raw);
  expect(resolver.queriesSent).toBeGreaterThan(before);
  const inThread = await authenticateInbound(session, raw, "mx.test", resolver.forMailauth);
  expect({ spf: inWorker.spf, dkim: inWorker.dkim, dmarc: inWorker.dmarc, aligned: inWorker.alignedDkim, policy: inWorker.dmarcPolicy }).toEqual({ spf: "pass", dkim: "pass", dmarc: "pass", aligned: true, policy: "reject" });
  expect({ ...inWorker, headers: "" }).toEqual({ ...inThread, headers: "" });
  expect(inWorker.headers.replace(/\d+/g, "")).toBe(inThread.headers.replace(/\d+/g, ""));
});

test("a DNS failure in the main resolver reaches mailauth in the worker as a temporary error", async () => {
  const broken = createResolver({ servers: [{ host: "127.0.0.1", port: 9 }], timeout: 200, attempts: 1 });
  const pool = startAuthWorkers({ hostname: "mx.test", lookup: broken.forMailauth, logger, size: 1 });
  try {
    const auth = await pool.authenticate(session, await signedMessage("dns down"));
    expect(auth.spf).toBe("temperror");
  } finally {
    await pool.close();
  }
});

test("a composed copy (forwarding.dkim_sign = always) carries a DKIM signature and an ARC seal that verify", async () => {
  const message = await signedMessage("composed");
  const auth = await workers.authenticate(session, message);
  const copy = await workers.compose({
    head: message.head,
    trace: "X-Original-To: hello@alias.test\r\n",
    auth,
    alias: "hello@alias.test",
    key: { domain: "alias.test", selector: "mailferry", privateKey: aliasKey.privateKey as unknown as string },
    dkimSign: "always",
  });
  expect(Buffer.isBuffer(copy.head)).toBe(true);
  expect(copy).toMatchObject({ sealed: true, dkimSigned: true, rewroteFrom: false });
  const checked = await authenticate(openMessage({ head: copy.head, body: message.body }), { ip: "127.0.0.1", helo: "mx.test", sender: "srs@mx.test", mta: "dest.test", resolver: resolver.forMailauth });
  const results = (checked.dkim?.results ?? []) as { signingDomain: string; status: { result: string } }[];
  expect(results.map((r) => [r.signingDomain, r.status.result]).sort()).toEqual([["alias.test", "pass"], ["sender.test", "pass"]]);
  expect((checked.arc as { status?: { result?: string } }).status?.result).toBe("pass");
});

test("another alias's copy under the first copy's seal (withSealOf) verifies: its trace headers differ, no signature covers them", async () => {
  const message = await signedMessage("shared seal");
  const auth = await workers.authenticate(session, message);
  const key = { domain: "alias.test", selector: "mailferry", privateKey: aliasKey.privateKey as unknown as string };
  const first = await workers.compose({ head: message.head, trace: "X-Original-To: hello@alias.test\r\n", auth, alias: "hello@alias.test", key, dkimSign: "always" });
  expect(sharesSeal(first)).toBe(true);
  const second = withSealOf(first, { head: message.head, trace: "X-Original-To: team@alias.test\r\n", auth });
  expect(second).toMatchObject({ sealed: true, dkimSigned: true, rewroteFrom: false, sealLength: first.sealLength });
  expect(second.head.toString()).toContain("X-Original-To: team@alias.test\r\n");
  expect(second.head.subarray(0, second.sealLength).toString()).toMatch(/^DKIM-Signature: [^]*ARC-Seal: i=1; [^]*ARC-Message-Signature: i=1; [^]*ARC-Authentication-Results: i=1; [^]*\r\n$/);
  const checked = await authenticate(openMessage({ head: second.head, body: message.body }), { ip: "127.0.0.1", helo: "mx.test", sender: "srs@mx.test", mta: "dest.test", resolver: resolver.forMailauth });
  const results = (checked.dkim?.results ?? []) as { signingDomain: string; status: { result: string } }[];
  expect(results.map((r) => [r.signingDomain, r.status.result]).sort()).toEqual([["alias.test", "pass"], ["sender.test", "pass"]]);
  expect((checked.arc as { status?: { result?: string } }).status?.result).toBe("pass");
});

test("a spooled message goes to the worker as its file's path: same verdicts, same body hash", async () => {
  const message = await signedMessage("spooled");
  const dir = mkdtempSync(join(tmpdir(), "mailferry-spool-"));
  try {
    const path = join(dir, "message");
    writeFileSync(path, Buffer.concat([message.head, (message.body as { bytes: Buffer }).bytes]));
    const fromFile = await workers.authenticate(session, { head: message.head, body: { path, offset: message.head.length } });
    const inMemory = await workers.authenticate(session, message);
    expect(fromFile.dkim).toBe("pass");
    expect(fromFile.bodyHash).toBe(inMemory.bodyHash);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a job that fails in the worker rejects with its reason, and the worker keeps serving", async () => {
  const message = await signedMessage("bad key");
  const auth = await workers.authenticate(session, message);
  const input = { head: message.head, trace: "", auth, alias: "hello@alias.test", dkimSign: "rewritten" as const };
  expect(await failureOf(workers.compose({ ...input, key: { domain: "alias.test", selector: "mailferry", privateKey: "not a key" } }))).toStartWith("ARC sealing for alias.test failed: ");
  expect((await workers.compose({ ...input, key: { domain: "alias.test", selector: "mailferry", privateKey: aliasKey.privateKey as unknown as string } })).sealed).toBe(true);
});

test("a worker that dies fails its jobs, and the next job gets a new worker", async () => {
  const errors: string[] = [];
  const watched = createLogger({ level: "error", format: "json", write: (line) => errors.push(line) });
  const pool = startAuthWorkers({ hostname: "mx.test", lookup: resolver.forMailauth, logger: watched, size: 1, entry: new URL("../support/fragile-worker.ts", import.meta.url) });
  try {
    expect(await failureOf(pool.authenticate(session, partsOf(Buffer.from("Subject: CRASH-THIS-WORKER\r\n\r\nbye\r\n"))))).toBe("authentication worker stopped: crashed on purpose");
    expect(errors.join("\n")).toContain("auth_worker.failed");
    const auth = await pool.authenticate(session, await signedMessage("after the crash"));
    expect(auth.dkim).toBe("pass");
  } finally {
    await pool.close();
  }
});

test("closing the pool rejects the jobs under way and every later one", async () => {
  const pool = startAuthWorkers({ hostname: "mx.test", lookup: resolver.forMailauth, logger, size: 1 });
  const running = pool.authenticate(session, await signedMessage("cut short"));
  await pool.close();
  expect(await failureOf(running)).toBe("authentication workers are stopped");
  expect(await failureOf(pool.authenticate(session, partsOf(Buffer.from("Subject: late\r\n\r\nx\r\n"))))).toBe("authentication workers are stopped");
});

test("worker_threads = 0: the same verdicts and a copy that verifies, on the calling thread (no worker script runs)", async () => {
  // The fragile worker would crash on this subject: on the calling thread it is just a message.
  const pool = startAuthWorkers({ hostname: "mx.test", lookup: resolver.forMailauth, logger, size: 0, entry: new URL("../support/fragile-worker.ts", import.meta.url) });
  try {
    expect((await pool.authenticate(session, partsOf(Buffer.from("Subject: CRASH-THIS-WORKER\r\n\r\nbye\r\n")))).spf).toBe("pass");
    const message = await signedMessage("on this thread");
    const here = await pool.authenticate(session, message);
    const inWorker = await workers.authenticate(session, message);
    expect({ ...here, headers: "" }).toEqual({ ...inWorker, headers: "" });
    const key = { domain: "alias.test", selector: "mailferry", privateKey: aliasKey.privateKey as unknown as string };
    const copy = await pool.compose({ head: message.head, trace: "X-Original-To: hello@alias.test\r\n", auth: here, alias: "hello@alias.test", key, dkimSign: "always" });
    expect(copy).toMatchObject({ sealed: true, dkimSigned: true });
    const checked = await authenticate(openMessage({ head: copy.head, body: message.body }), { ip: "127.0.0.1", helo: "mx.test", sender: "srs@mx.test", mta: "dest.test", resolver: resolver.forMailauth });
    expect((checked.arc as { status?: { result?: string } }).status?.result).toBe("pass");
  } finally {
    await pool.close();
  }
});
