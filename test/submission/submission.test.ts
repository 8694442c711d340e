// Sending as an alias (issue 19, docs/send-as.md), over real SMTP: swaks and
// nodemailer submit with an app password on the STARTTLS port and the
// implicit-TLS port; the message leaves through the outbound queue to a sink,
// DKIM-signed for the alias's domain (checked by dkimpy), with the alias as
// envelope sender and From. AUTH without TLS, a wrong password (throttled), a
// From of another address, a revoked password, the size and per-password limits are
// refused with the codes of docs/send-as.md, and so is spam when rspamd is
// configured.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import nodemailer from "nodemailer";
import { dkimRecordValue } from "../../src/mail/dkim-key.ts";
import { listDkimKeys } from "../../src/store/dkim-keys.ts";
import { listPasswords } from "../../src/store/passwords.ts";
import { dkimpyVerify, hasDkimpy } from "../support/dkim-verify.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { SmtpTalk } from "../support/smtp-client.ts";
import { rspamdInstalled, startRspamd } from "../support/rspamd.ts";
import { CLI, run } from "../support/smoke.ts";

let dns: DnsServer;
let sink: Sink;
let mf: TestMailferry;
let submission: { port: number; tlsPort: number };
/** The app password of hello@example.test, as `password create` printed it on its last line. */
let password: string;

const ALIAS = "hello@example.test";

async function cli(args: string[]) {
  const result = await run([...CLI, ...args], { cwd: mf.dataDir, env: { MAILFERRY_DATA_DIR: mf.dataDir } });
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  return result.stdout.trimEnd().split("\n");
}

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: [sink.host] } });
  mf = await startMailferry({
    dns,
    domains: ["example.test"],
    env: { MAILFERRY_SUBMISSION_ENABLED: "true", MAILFERRY_SUBMISSION_PORT: "0", MAILFERRY_SUBMISSION_TLS_PORT: "0", MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_SUBMISSION_RECIPIENTS_PER_MESSAGE: "3", MAILFERRY_SUBMISSION_MESSAGES_PER_HOUR: "3", MAILFERRY_SMTP_MAX_SIZE: "64KB" },
  });
  submission = mf.appliance.submission!;
  for (const k of await listDkimKeys(mf.appliance.store.db, "example.test")) dns.zones[`${k.selector}._domainkey.example.test`] = { TXT: [dkimRecordValue(k)] };
  password = (await cli(["password", "create", ALIAS, "--name", "Gmail"])).at(-1)!;
}, 30_000);

afterAll(async () => {
  await mf?.stop();
  await sink?.close();
  await dns?.close();
});

function message(from: string, subject: string): string {
  return `From: Hello <${from}>\r\nTo: friend@dest.test\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${crypto.randomUUID()}@example.test>\r\n\r\nA reply, sent as the alias.\r\n`;
}

/** swaks against the STARTTLS port: its exit code and its transcript. */
async function swaks(args: string[], localAddress = "127.0.0.1") {
  const proc = Bun.spawn(["swaks", "--server", `127.0.0.1:${submission.port}`, "--local-interface", localAddress, "--tls", "--to", "friend@dest.test", "--timeout", "15", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return { code, out };
}

async function receivedWith(subject: string) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const found = sink.messages.find((m) => m.raw.toString().includes(`Subject: ${subject}`));
    if (found) return found;
    await Bun.sleep(50);
  }
  throw new Error(`no message "${subject}" reached the sink`);
}

async function expectSignedAsAlias(subject: string) {
  const received = await receivedWith(subject);
  expect(received.mailFrom).toBe(ALIAS);
  expect(received.rcptTo).toEqual(["friend@dest.test"]);
  expect(received.raw.toString()).toContain(`From: Hello <${ALIAS}>`);
  if (hasDkimpy) expect(await dkimpyVerify(received.raw, dns)).toMatchObject({ pass: true, domain: "example.test" });
}

describe("submission on both ports", () => {
  test("swaks with AUTH PLAIN after STARTTLS on the submission port: 250 once queued, then delivered signed for the alias's domain", async () => {
    const subject = "via swaks";
    const { code, out } = await swaks(["--from", ALIAS, "--auth", "PLAIN", "--auth-user", ALIAS, "--auth-password", password, "--data", message(ALIAS, subject)]);
    expect(out).toMatch(/<~ +235 /);
    expect(out).toMatch(/<~ +250 2\.0\.0 Message queued as \d+/);
    expect(code).toBe(0);
    await expectSignedAsAlias(subject);
  }, 30_000);

  test("nodemailer with AUTH LOGIN on the implicit-TLS port", async () => {
    const transport = nodemailer.createTransport({ host: "127.0.0.1", port: submission.tlsPort, secure: true, auth: { user: ALIAS, pass: password }, authMethod: "LOGIN", tls: { rejectUnauthorized: false } });
    const subject = "via nodemailer";
    const info = await transport.sendMail({ envelope: { from: ALIAS, to: ["friend@dest.test"] }, raw: message(ALIAS, subject) });
    expect(info.response).toMatch(/^250 2\.0\.0 Message queued as \d+/);
    await expectSignedAsAlias(subject);
  }, 30_000);

  test("the password's last use is recorded and the list never shows its secret", async () => {
    const [row] = await listPasswords(mf.appliance.store.db);
    expect(row!.last_used_at).toBeNumber();
    const listed = (await cli(["password", "list", "--json"])).join("\n");
    expect(JSON.parse(listed)[0]).toMatchObject({ name: "Gmail", kind: "address", send_as: ALIAS, revoked_at: null });
    expect(listed).not.toContain(password);
  }, 30_000);
});

describe("refusals", () => {
  test("AUTH before STARTTLS is refused 538 5.7.11, and MAIL without AUTH 530 5.7.0", async () => {
    const { talk } = await SmtpTalk.connect(submission.port);
    await talk.send("EHLO client.test");
    const early = await talk.send(`AUTH PLAIN ${Buffer.from(`\0${ALIAS}\0${password}`).toString("base64")}`);
    expect(`${early.code} ${early.text}`).toBe("538 5.7.11 Encryption required for requested authentication mechanism");
    // AUTH LOGIN is refused before it asks for anything: no password crosses in the clear.
    const login = await talk.send("AUTH LOGIN");
    expect(login.code).toBe(538);
    const mail = await talk.send(`MAIL FROM:<${ALIAS}>`);
    expect(`${mail.code} ${mail.text}`).toBe("530 5.7.0 Authentication required");
    talk.close();
  }, 15_000);

  test("a From header of another address is refused 550 5.7.1, and so is that envelope sender", async () => {
    const header = await swaks(["--from", ALIAS, "--auth", "LOGIN", "--auth-user", ALIAS, "--auth-password", password, "--data", message("boss@example.test", "not mine")]);
    expect(header.out).toMatch(/<~\* +550 5\.7\.1 From: boss@example\.test is not an address this password may send as/);
    const envelope = await swaks(["--from", "boss@example.test", "--auth", "LOGIN", "--auth-user", ALIAS, "--auth-password", password, "--data", message(ALIAS, "not mine either")]);
    expect(envelope.out).toMatch(/<~\* +550 5\.7\.1 boss@example\.test is not an address/);
  }, 30_000);

  test("more recipients than the per-message limit get 452 4.5.3", async () => {
    const to = ["a@dest.test", "b@dest.test", "c@dest.test", "d@dest.test"].join(",");
    const { out } = await swaks(["--from", ALIAS, "--auth", "PLAIN", "--auth-user", ALIAS, "--auth-password", password, "--data", message(ALIAS, "many"), "--to", to]);
    expect(out).toMatch(/<~\* +452 4\.5\.3 Too many recipients \(at most 3 per message\)/);
  }, 30_000);

  test("a message over the size limit gets 552 5.3.4", async () => {
    const big = message(ALIAS, "too big").replace("A reply, sent as the alias.", "x".repeat(998) + "\r\n".repeat(1) + ("y".repeat(998) + "\r\n").repeat(80));
    const { out } = await swaks(["--from", ALIAS, "--auth", "PLAIN", "--auth-user", ALIAS, "--auth-password", password, "--data", big], "127.0.0.12");
    expect(out).toMatch(/<~\* +552 5\.3\.4 Message size exceeds the limit/);
  }, 30_000);

  test("a password's messages past the hourly limit get 451 4.7.0", async () => {
    const limited = (await cli(["password", "create", "busy@example.test", "--name", "script"])).at(-1)!;
    const transport = nodemailer.createTransport({ host: "127.0.0.1", port: submission.tlsPort, secure: true, pool: true, maxConnections: 1, auth: { user: "busy@example.test", pass: limited }, tls: { rejectUnauthorized: false } });
    const send = (n: number) => transport.sendMail({ envelope: { from: "busy@example.test", to: ["friend@dest.test"] }, raw: message("busy@example.test", `busy ${n}`) });
    for (const n of [1, 2, 3]) expect((await send(n)).response).toStartWith("250 2.0.0");
    await expect(send(4)).rejects.toMatchObject({ responseCode: 451, response: expect.stringContaining("451 4.7.0 Rate limit: more than 3 messages in an hour") });
    transport.close();
  }, 30_000);

  test("a wrong password gets 535 5.7.8, and after 5 failures the client is throttled (454) even with the right one", async () => {
    // From an address of its own, so the other tests' client is not throttled.
    const attempt = (pass: string) => swaks(["--from", ALIAS, "--auth", "PLAIN", "--auth-user", ALIAS, "--auth-password", pass, "--quit-after", "AUTH"], "127.0.0.9");
    for (let i = 0; i < 5; i++) expect((await attempt("wrong-password")).out).toMatch(/<~\* +535 5\.7\.8 /);
    expect((await attempt(password)).out).toMatch(/<~\* +454 4\.7\.0 Too many failed authentication attempts/);
    expect(mf.logs.filter((l) => l.event === "submission.auth_failed" && l.ip === "127.0.0.9")).toHaveLength(6);
  }, 60_000);

  test("a revoked password is refused", async () => {
    // Another address: the throttle test above has used up hello@'s failures.
    const other = (await cli(["password", "create", "old@example.test", "--name", "old phone"])).at(-1)!;
    const id = JSON.parse((await cli(["password", "list", "--json"])).join("\n")).find((p: { name: string }) => p.name === "old phone").id;
    const login = () => swaks(["--from", ALIAS, "--auth", "PLAIN", "--auth-user", "old@example.test", "--auth-password", other, "--quit-after", "AUTH"], "127.0.0.10");
    expect((await login()).out).toMatch(/<~ +235 /);
    expect((await cli(["password", "revoke", String(id)])).at(-1)).toBe(`revoked app password ${id} "old phone" of old@example.test`);
    expect((await login()).out).toMatch(/<~\* +535 5\.7\.8 /);
  }, 30_000);

  test.skipIf(!rspamdInstalled())("with rspamd configured, clear spam is refused 554 5.7.1", async () => {
    const rspamd = await startRspamd();
    mf.appliance.config.scan.rspamdUrl = rspamd.url;
    try {
      const scanned = (await cli(["password", "create", "scan@example.test", "--name", "scan"])).at(-1)!;
      const spam = message("scan@example.test", "spam").replace("A reply, sent as the alias.", "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X");
      const { out } = await swaks(["--from", "scan@example.test", "--auth", "PLAIN", "--auth-user", "scan@example.test", "--auth-password", scanned, "--data", spam], "127.0.0.11");
      expect(out).toMatch(/<~\* +554 5\.7\.1 Message rejected as spam \(score [\d.]+ of [\d.]+\)/);
      expect(mf.logs.some((l) => l.event === "submission.verdict" && l.reason === "spam")).toBe(true);
    } finally {
      mf.appliance.config.scan.rspamdUrl = null;
      await rspamd.stop();
    }
  }, 90_000);
});
