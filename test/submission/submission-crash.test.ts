// A submitted message survives a crash: a real `mailferry serve` child process
// answers 250 on the submission port (587, STARTTLS, AUTH) only once the
// message is in the outbound queue, is killed with SIGKILL right after that
// answer while its first attempt still waits for the (slow) DNS of the
// destination, and on the next start delivers it exactly once, DKIM-signed
// for the alias's domain and sent as the alias.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dkimRecordValue } from "../../src/mail/dkim-key.ts";
import { preparePrivateDataDir } from "../../src/store/data-dir.ts";
import { listQueue } from "../../src/store/deliveries.ts";
import { listDkimKeys } from "../../src/store/dkim-keys.ts";
import { addDomain } from "../../src/store/domains.ts";
import { createPassword } from "../../src/store/passwords.ts";
import { dkimpyVerify, hasDkimpy } from "../support/dkim-verify.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { type ServeProcess, startServe, withDataDirDb } from "../support/serve-process.ts";
import { type Sink, startSink } from "../support/sink.ts";

const ALIAS = "hello@example.test";
let dns: DnsServer;
let sink: Sink;
let server: ServeProcess | undefined;
let password: string;
const dataDir = mkdtempSync(join(tmpdir(), "mailferry-submission-crash-"));


beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2", tls: "none" });
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }], delayMs: 3_000 }, "mx.dest.test": { A: [sink.host] } });
  preparePrivateDataDir(dataDir);
  password = await withDataDirDb(dataDir, async (db) => {
    await addDomain(db, "example.test");
    for (const k of await listDkimKeys(db, "example.test")) dns.zones[`${k.selector}._domainkey.example.test`] = { TXT: [dkimRecordValue(k)] };
    return (await createPassword(db, ALIAS, "phone")).password;
  });
});

afterAll(async () => {
  await server?.kill();
  await sink?.close();
  await dns?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The server, and its STARTTLS submission port from the ready line. */
async function start(): Promise<{ server: ServeProcess; port: number }> {
  let port = 0;
  const started = await startServe(
    {
      MAILFERRY_DATA_DIR: dataDir,
      MAILFERRY_HOSTNAME: "mx.example.test",
      MAILFERRY_SMTP_PORT: "0",
      MAILFERRY_HTTP_PORT: "0",
      MAILFERRY_SUBMISSION_ENABLED: "true",
      MAILFERRY_SUBMISSION_PORT: "0",
      MAILFERRY_SUBMISSION_TLS_PORT: "0",
      MAILFERRY_DNS_SERVERS: dns.address,
      MAILFERRY_DNS_TIMEOUT: "10s",
      MAILFERRY_OUTBOUND_PORT: String(sink.port),
      MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true",
    },
    (line) => {
      if (line.event === "mailferry.ready") port = Number(String(line.submission).split(":").pop());
    },
  );
  return { server: started, port };
}

test("kill -9 right after the 250: after the restart the message is delivered exactly once", async () => {
  const first = await start();
  server = first.server;
  const data = `From: <${ALIAS}>\r\nTo: <friend@dest.test>\r\nSubject: survives a crash\r\nDate: ${new Date().toUTCString()}\r\n\r\nQueued before the answer.\r\n`;
  const swaks = Bun.spawn(["swaks", "--server", `127.0.0.1:${first.port}`, "--tls", "--auth", "PLAIN", "--auth-user", ALIAS, "--auth-password", password, "--from", ALIAS, "--to", "friend@dest.test", "--data", data, "--timeout", "15"], { stdout: "pipe" });
  const [transcript, code] = await Promise.all([new Response(swaks.stdout).text(), swaks.exited]);
  expect(transcript).toMatch(/<~ +250 2\.0\.0 Message queued as \d+/);
  expect(code).toBe(0);
  await server.kill();
  server = undefined;

  expect(sink.messages).toEqual([]);
  const queued = await withDataDirDb(dataDir, (db) => listQueue(db));
  expect(queued.map((e) => [e.mail_from, e.recipients.map((r) => [r.address, r.status])])).toEqual([[ALIAS, [["friend@dest.test", "pending"]]]]);

  dns.zones["dest.test"]!.delayMs = 0;
  server = (await start()).server;
  const [mail] = await sink.waitForMessages(1, 15_000);
  expect(mail!.mailFrom).toBe(ALIAS);
  expect(mail!.rcptTo).toEqual(["friend@dest.test"]);
  if (hasDkimpy) expect(await dkimpyVerify(mail!.raw, dns)).toMatchObject({ pass: true, domain: "example.test" });
  // Time for a second copy, were one to come: the next rounds find nothing due.
  await Bun.sleep(1_500);
  expect(sink.messages).toHaveLength(1);
  await server.kill();
  server = undefined;
  expect(await withDataDirDb(dataDir, (db) => listQueue(db))).toEqual([]);
}, 90_000);
