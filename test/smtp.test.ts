// The MX listener over real SMTP on loopback.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSelfSigned } from "../src/tls/credentials.ts";
import { DATABASE_FILE } from "../src/store/db.ts";
import { listEvents } from "../src/store/events.ts";
import { reverseName } from "../src/dns/resolver.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "./support/mailferry.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { sendMail, SmtpTalk } from "./support/smtp-client.ts";

const MAX_SIZE = 100 * 1024;
let dns: DnsServer;
let mf: TestMailferry;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({
    [reverseName("127.0.0.1")]: { PTR: ["client.loopback.test"] },
    "elsewhere.test": { MX: [{ priority: 10, exchange: "mx.elsewhere.test" }] },
    "mx.elsewhere.test": { A: ["127.0.0.2"] },
  });
  mf = await startMailferry({
    dns,
    domains: ["example.test", "bücher.test"],
    aliases: { "example.test": "forward-email=someone@elsewhere.test", "bücher.test": "forward-email=kunde:someone@elsewhere.test" },
    env: { MAILFERRY_SMTP_MAX_SIZE: String(MAX_SIZE), MAILFERRY_OUTBOUND_PORT: String(sink.port) },
  });
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
  await sink.close();
});

async function session() {
  const { talk, greeting } = await SmtpTalk.connect(mf.smtpPort);
  const ehlo = await talk.send("EHLO client.test");
  return { talk, greeting, ehlo };
}

describe("greeting and EHLO", () => {
  test("banner names the host; EHLO offers SIZE, 8BITMIME, PIPELINING, SMTPUTF8 and STARTTLS, not AUTH", async () => {
    const { talk, greeting, ehlo } = await session();
    expect(greeting.code).toBe(220);
    expect(greeting.text).toStartWith(`${TEST_HOSTNAME} ESMTP`);
    expect(ehlo.code).toBe(250);
    const features = ehlo.lines.slice(1).map((l) => l.slice(4));
    expect(features).toContain(`SIZE ${MAX_SIZE}`);
    for (const f of ["8BITMIME", "PIPELINING", "SMTPUTF8", "STARTTLS"]) expect(features).toContain(f);
    expect(features.some((f) => f.startsWith("AUTH"))).toBe(false);
    talk.close();
  });
});

describe("STARTTLS", () => {
  test("is negotiated with TLS 1.2 or newer, after which STARTTLS is no longer offered", async () => {
    const { talk } = await session();
    expect((await talk.send("STARTTLS")).code).toBe(220);
    const secure = await talk.startTls();
    expect(["TLSv1.2", "TLSv1.3"]).toContain(secure.getProtocol()!);
    const ehlo = await talk.send("EHLO client.test");
    expect(ehlo.code).toBe(250);
    expect(ehlo.lines.some((l) => l.includes("STARTTLS"))).toBe(false);
    expect((await talk.send("MAIL FROM:<someone@sender.test>")).code).toBe(250);
    expect((await talk.send("RCPT TO:<hello@example.test>")).code).toBe(250);
    talk.close();
  });

  test("TLS 1.1 and older are refused", async () => {
    const { talk } = await session();
    expect((await talk.send("STARTTLS")).code).toBe(220);
    const outcome = await talk.startTls({ minVersion: "TLSv1", maxVersion: "TLSv1.1" }).then(
      (old) => `connected with ${old.getProtocol()}`,
      () => "refused",
    );
    expect(outcome).toBe("refused");
    talk.close();
  });

  test("a real client sending with requireTLS gets through the TLS session to the DATA verdict", async () => {
    const info = await sendMail(mf.smtpPort, { from: "a@sender.test", to: "hello@example.test", requireTLS: true, subject: "over tls" });
    expect(info.response).toStartWith("250 2.0.0");
    const [data] = await listEvents(mf.appliance.store.db, { stage: "data", limit: 1 });
    expect(JSON.parse(data!.detail!).tls.protocol).toMatch(/^TLSv1\.[23]$/);
    // The TLS session shows in the trace header of the forwarded copy.
    const copy = sink.messages.find((m) => m.raw.toString().includes("Subject: over tls"))!;
    expect(copy.raw.toString()).toMatch(/with ESMTPS id [^\r]+\r\n\t\(using TLSv1\.[23] with cipher /);
  });

  test("the self-signed certificate names the configured host name", async () => {
    const { talk } = await session();
    await talk.send("STARTTLS");
    const secure = await talk.startTls();
    expect(secure.getPeerCertificate().subject.CN).toBe(TEST_HOSTNAME);
    talk.close();
  });
});

describe("swaks, an independent SMTP client", () => {
  test.skipIf(!Bun.which("swaks"))("negotiates STARTTLS and gets the DATA verdict", async () => {
    const proc = Bun.spawn(["swaks", "--server", `127.0.0.1:${mf.smtpPort}`, "--tls", "--from", "a@sender.test", "--to", "hello@example.test", "--timeout", "10"], { stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    const transcript = out + err;
    expect(transcript).toMatch(/TLS started with cipher TLSv1\.[23]/);
    expect(transcript).toContain("<~  250 Accepted");
    expect(transcript).toContain("<~  250 2.0.0 Message forwarded");
  });
});

describe("RCPT TO: never an open relay", () => {
  test("a domain that is not managed gets 550 5.7.1", async () => {
    const { talk } = await session();
    await talk.send("MAIL FROM:<someone@sender.test>");
    const r = await talk.send("RCPT TO:<victim@gmail.test>");
    expect(r.code).toBe(550);
    expect(r.text).toStartWith("5.7.1 ");
    talk.close();
  });

  test("a subdomain of a managed domain is not the managed domain", async () => {
    const { talk } = await session();
    await talk.send("MAIL FROM:<someone@sender.test>");
    expect((await talk.send("RCPT TO:<x@sub.example.test>")).code).toBe(550);
    expect((await talk.send("RCPT TO:<x@example.test.evil.test>")).code).toBe(550);
    talk.close();
  });

  test("a managed domain is accepted whatever the case of the address", async () => {
    const { talk } = await session();
    await talk.send("MAIL FROM:<someone@sender.test>");
    expect((await talk.send("RCPT TO:<hello@example.test>")).code).toBe(250);
    expect((await talk.send("RCPT TO:<Hello@EXAMPLE.Test>")).code).toBe(250);
    talk.close();
  });

  test("an internationalised domain is matched in its punycode form (SMTPUTF8)", async () => {
    const { talk } = await session();
    await talk.send("MAIL FROM:<someone@sender.test> SMTPUTF8");
    expect((await talk.send("RCPT TO:<kunde@bücher.test>")).code).toBe(250);
    expect((await talk.send("RCPT TO:<kunde@xn--bcher-kva.test>")).code).toBe(250);
    talk.close();
  });

  test("address literals and malformed addresses are refused with 5xx", async () => {
    const { talk } = await session();
    await talk.send("MAIL FROM:<someone@sender.test>");
    expect((await talk.send("RCPT TO:<x@[127.0.0.1]>")).code).toBe(550);
    // Gross syntax errors are answered by smtp-server's parser itself (501, no enhanced code) ...
    expect((await talk.send("RCPT TO:<a..b@example.test>")).code).toBe(501);
    expect((await talk.send("RCPT TO:<@example.test>")).code).toBe(501);
    expect((await talk.send("RCPT TO:no-brackets@example.test")).code).toBe(501);
    // ... finer RFC 5321 rules by mailferry's own address check.
    for (const address of ["a(b@example.test", `${"x".repeat(65)}@example.test`, "x@localhost"]) {
      const bad = await talk.send(`RCPT TO:<${address}>`);
      expect(bad.code).toBe(501);
      expect(bad.text).toBe("5.1.3 Bad recipient address syntax");
    }
    expect((await talk.send("RCPT TO:<hello@example.test>")).code).toBe(250);
    talk.close();
  });
});

describe("MAIL FROM", () => {
  test("the null sender is accepted; a malformed sender gets 501 5.1.7", async () => {
    const { talk } = await session();
    expect((await talk.send("MAIL FROM:<>")).code).toBe(250);
    await talk.send("RSET");
    expect((await talk.send("MAIL FROM:<not an address>")).code).toBe(501);
    const r = await talk.send("MAIL FROM:<a(b@sender.test>");
    expect(r.code).toBe(501);
    expect(r.text).toBe("5.1.7 Bad sender address syntax");
    talk.close();
  });

  test("a declared SIZE over the limit is refused with 552; within the limit it is accepted", async () => {
    const { talk } = await session();
    const over = await talk.send(`MAIL FROM:<someone@sender.test> SIZE=${MAX_SIZE + 1}`);
    expect(over.code).toBe(552);
    expect((await talk.send(`MAIL FROM:<someone@sender.test> SIZE=${MAX_SIZE}`)).code).toBe(250);
    talk.close();
  });
});

describe("protocol errors", () => {
  test("a malformed command gets 5xx and the session goes on", async () => {
    const { talk } = await session();
    const r = await talk.send("HELLO THERE");
    expect(r.code).toBeGreaterThanOrEqual(500);
    expect(r.code).toBeLessThan(600);
    const param = await talk.send("MAIL FROM:<someone@sender.test> BOGUS=1");
    expect(param.code).toBe(555);
    expect(param.text).toBe("5.5.4 Parameter BOGUS not recognized or not implemented");
    expect((await talk.send("NOOP")).code).toBe(250);
    expect((await talk.send("MAIL FROM:<someone@sender.test>")).code).toBe(250);
    expect((await talk.send("RCPT TO:<other@example.test> NOTIFY=NEVER")).code).toBe(555);
    expect((await talk.send("RCPT TO:<hello@example.test>")).code).toBe(250);
    talk.close();
  });

  test("DATA before RCPT is a sequence error, not a crash", async () => {
    const { talk } = await session();
    expect((await talk.send("DATA")).code).toBe(503);
    expect((await talk.send("NOOP")).code).toBe(250);
    talk.close();
  });
});

describe("DATA", () => {
  test("a message larger than the limit, sent without SIZE, gets 552 5.3.4", async () => {
    const { talk } = await session();
    await talk.send("MAIL FROM:<someone@sender.test>");
    await talk.send("RCPT TO:<hello@example.test>");
    expect((await talk.send("DATA")).code).toBe(354);
    talk.write(`From: a@sender.test\r\nSubject: big\r\n\r\n${"x".repeat(998)}\r\n`.repeat(Math.ceil(MAX_SIZE / 1000) + 5));
    const r = await talk.send(".");
    expect(r.code).toBe(552);
    expect(r.text).toStartWith("5.3.4");
    expect((await talk.send("NOOP")).code).toBe(250);
    talk.close();
  });

  test("each verdict is logged and recorded with envelope and headers, never the body", async () => {
    const { talk } = await session();
    await talk.send("MAIL FROM:<carol@sender.test>");
    await talk.send("RCPT TO:<nobody@unmanaged.test>");
    await talk.send("RCPT TO:<hello@example.test>");
    await talk.send("DATA");
    const r = await talk.send("From: Carol <carol@sender.test>\r\nTo: hello@example.test\r\nSubject: ledger\r\nMessage-ID: <m1@sender.test>\r\n\r\nSECRET-BODY-TEXT\r\n.");
    expect(r.code).toBe(250);
    const sessionId = (await listEvents(mf.appliance.store.db, { stage: "data", limit: 1 }))[0]!.session_id;
    const events = (await listEvents(mf.appliance.store.db, { sessionId })).reverse();
    expect(events.map((e) => [e.stage, e.code])).toEqual([
      ["connect", 220],
      ["mail", 250],
      ["rcpt", 550],
      ["rcpt", 250],
      ["delivery", 250],
      ["data", 250],
    ]);
    const delivery = events.at(-2)!;
    expect(JSON.parse(delivery.recipients!)).toEqual(["someone@elsewhere.test"]);
    expect(JSON.parse(delivery.detail!)).toMatchObject({ original_recipient: "hello@example.test", mx: "mx.elsewhere.test" });
    const data = events.at(-1)!;
    expect(data.mail_from).toBe("carol@sender.test");
    expect(JSON.parse(data.recipients!)).toEqual(["hello@example.test"]);
    expect(data.domain).toBe("example.test");
    expect(data.subject).toBe("ledger");
    expect(data.message_id).toBe("<m1@sender.test>");
    expect(data.headers).toContain("Subject: ledger");
    expect(JSON.parse(data.detail!)).toMatchObject({ helo: "client.test", client_host: "client.loopback.test" });
    for (const e of events) expect(JSON.stringify(e)).not.toContain("SECRET-BODY-TEXT");
    const lines = mf.logs.filter((l) => l.event === "smtp.verdict" && l.session === sessionId);
    expect(lines.map((l) => l.stage)).toEqual(["connect", "mail", "rcpt", "rcpt", "data"]);
    expect(lines.at(-1)).toMatchObject({ ip: "127.0.0.1", reply: "250 2.0.0 Message forwarded" });
    talk.close();
  });
});

describe("internal errors answer 421", () => {
  test("a database failure during RCPT answers 421 and closes; the listener keeps serving", async () => {
    const side = new Database(join(mf.dataDir, DATABASE_FILE));
    const { talk: failing } = await session();
    await failing.send("MAIL FROM:<someone@sender.test>");
    // The routing configuration (and the sender lists) are cached; their versions are read from settings on every RCPT.
    side.run("ALTER TABLE settings RENAME TO settings_away");
    try {
      const talk = failing;
      const r = await talk.send("RCPT TO:<hello@example.test>");
      expect(r.code).toBe(421);
      expect(r.text).toStartWith("4.3.0");
      await Bun.sleep(50);
      expect(talk.closed).toBe(true);
      expect(mf.logs.some((l) => l.event === "smtp.internal_error" && l.stage === "rcpt")).toBe(true);
    } finally {
      side.run("ALTER TABLE settings_away RENAME TO settings");
      side.close();
    }
    const { talk } = await session();
    await talk.send("MAIL FROM:<someone@sender.test>");
    expect((await talk.send("RCPT TO:<hello@example.test>")).code).toBe(250);
    talk.close();
  });
});

describe("health", () => {
  test("/healthz reports version, uptime, database and listener", async () => {
    const res = await fetch(`${mf.httpUrl}healthz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: "ok", db: { ok: true }, smtp: { listening: true, port: mf.smtpPort } });
    expect(typeof body.version).toBe("string");
    expect(typeof body.uptime_s).toBe("number");
  });
});

describe("certificates", () => {
  test("the self-signed certificate is made on first start and reused after a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailferry-cert-"));
    try {
      const first = await startMailferry({ dns, dataDir: dir });
      const cert1 = readFileSync(join(dir, "tls/selfsigned.crt"));
      await first.stop();
      const second = await startMailferry({ dns, dataDir: dir });
      const cert2 = readFileSync(join(dir, "tls/selfsigned.crt"));
      await second.stop();
      expect(new X509Certificate(cert2).fingerprint256).toBe(new X509Certificate(cert1).fingerprint256);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a configured certificate is the one served by STARTTLS", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailferry-cert-"));
    const own = generateSelfSigned("own-cert.example.test");
    writeFileSync(join(dir, "own.crt"), own.cert);
    writeFileSync(join(dir, "own.key"), own.key);
    const instance = await startMailferry({ dns, env: { MAILFERRY_TLS_CERT: join(dir, "own.crt"), MAILFERRY_TLS_KEY: join(dir, "own.key") } });
    try {
      const { talk } = await SmtpTalk.connect(instance.smtpPort);
      await talk.send("EHLO client.test");
      await talk.send("STARTTLS");
      const secure = await talk.startTls();
      expect(secure.getPeerCertificate().subject.CN).toBe("own-cert.example.test");
      talk.close();
    } finally {
      await instance.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("graceful shutdown", () => {
  test("a session in DATA finishes with its reply; new connections are refused; stop() resolves", async () => {
    const instance = await startMailferry({ dns, domains: ["example.test"], aliases: { "example.test": "forward-email=hello:someone@elsewhere.test" }, env: { MAILFERRY_OUTBOUND_PORT: String(sink.port) } });
    const { talk } = await SmtpTalk.connect(instance.smtpPort);
    await talk.send("EHLO client.test");
    await talk.send("MAIL FROM:<someone@sender.test>");
    await talk.send("RCPT TO:<hello@example.test>");
    expect((await talk.send("DATA")).code).toBe(354);
    talk.write("From: a@sender.test\r\nSubject: in flight\r\n\r\nbody\r\n");
    const stopped = instance.stop();
    await Bun.sleep(100);
    const r = await talk.send(".");
    expect(r.code).toBe(250);
    const after = await talk.send("NOOP");
    expect(after.code).toBe(421);
    await stopped;
    const refused = await SmtpTalk.connect(instance.smtpPort).then(
      () => "connected",
      () => "refused",
    );
    expect(refused).toBe("refused");
  });
});
