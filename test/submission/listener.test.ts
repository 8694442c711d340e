// The submission listener's answer to DATA waits for the outbound queue: 250
// only once enqueue resolved, and 421 (the client keeps the message) when it
// failed. The listener runs for real on loopback with its real SMTP; only the
// queue behind it is a function the test controls.
import { afterAll, afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import nodemailer from "nodemailer";
import { loadConfig } from "../../src/config/index.ts";
import type { OutboundMessage } from "../../src/delivery/outbox.ts";
import { createLogger } from "../../src/log.ts";
import { fixedCertificate, generateSelfSigned } from "../../src/tls/credentials.ts";
import { startSubmissionListener, type SubmissionListener } from "../../src/submission/listener.ts";
import { freePort } from "../support/ports.ts";

const dataDir = mkdtempSync(join(tmpdir(), "mailferry-submission-listener-"));
const config = loadConfig({ env: { MAILFERRY_DATA_DIR: dataDir, MAILFERRY_SUBMISSION_PORT: "0", MAILFERRY_SUBMISSION_TLS_PORT: "0", MAILFERRY_HOSTNAME: "mx.example.test" } });
const tls = generateSelfSigned("mx.example.test");
const credential = { id: 1, name: "phone", kind: "address" as const, identity: "hello@example.test", created_at: 0, last_used_at: null, revoked_at: null };
let listener: SubmissionListener | undefined;

afterEach(async () => {
  await listener?.close();
  listener = undefined;
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function listen(enqueue: (message: OutboundMessage) => Promise<number>, ports = config.submission) {
  listener = await startSubmissionListener({
    config: { ...config, submission: { ...config.submission, ...ports } },
    certificates: fixedCertificate({ key: Buffer.from(tls.key), cert: Buffer.from(tls.cert), certPath: "", selfSigned: true }),
    logger: createLogger({ level: "silent", format: "json" }),
    authenticate: async () => ({ credential }),
    countMessage: async () => 1,
    scan: async () => null,
    enqueue,
  });
  return listener;
}

const submit = (port: number) =>
  nodemailer
    .createTransport({ host: "127.0.0.1", port, secure: true, auth: { user: credential.identity, pass: "x" }, tls: { rejectUnauthorized: false } })
    .sendMail({ envelope: { from: credential.identity, to: ["friend@dest.test"] }, raw: `From: ${credential.identity}\r\nSubject: hi\r\n\r\nbody\r\n` });

test("250 comes only after enqueue resolved, with the queue id; the queued message is the submitted one with a Received line", async () => {
  let resolvedAt = 0;
  const queued: OutboundMessage[] = [];
  const { tlsPort } = await listen(async (message) => {
    queued.push(message);
    await Bun.sleep(500);
    resolvedAt = Date.now();
    return 42;
  });
  const info = await submit(tlsPort);
  expect(Date.now()).toBeGreaterThanOrEqual(resolvedAt);
  expect(resolvedAt).toBeGreaterThan(0);
  expect(info.response).toBe("250 2.0.0 Message queued as 42");
  expect(queued).toHaveLength(1);
  expect(queued[0]).toMatchObject({ from: credential.identity, to: ["friend@dest.test"], submitter: credential.identity });
  expect(queued[0]!.raw.toString()).toMatch(/^Received: from .+\r\n\tby mx\.example\.test \(mailferry\) with ESMTPSA id .+;\r\n\t.+\r\nFrom: hello@example\.test\r\nSubject: hi\r\n\r\nbody\r\n$/);
});

test("a queue that fails answers 421 4.3.0: nothing is accepted and lost", async () => {
  const { tlsPort } = await listen(async () => {
    throw new Error("disk full");
  });
  await expect(submit(tlsPort)).rejects.toMatchObject({ responseCode: 421, response: "421 4.3.0 Temporary local problem, please try again later" });
});

test("when the implicit-TLS port is taken, start fails and the STARTTLS port is let go again", async () => {
  const taken = net.createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => taken.once("listening", resolve));
  const port = await freePort();
  await expect(listen(async () => 1, { ...config.submission, port, tlsPort: (taken.address() as net.AddressInfo).port })).rejects.toThrow("EADDRINUSE");
  const again = net.createServer().listen(port, "127.0.0.1");
  await new Promise((resolve, reject) => again.once("listening", resolve).once("error", reject));
  again.close();
  taken.close();
});
