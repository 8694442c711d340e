// Every DATA check answers its code (docs/delivery-and-authentication.md), over real SMTP.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { GTUBE } from "../../src/smtp/content.ts";
import { DATABASE_FILE } from "../../src/store/db.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { SmtpTalk } from "../support/smtp-client.ts";

let dns: DnsServer;
let mf: TestMailferry;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: ["127.0.0.2"] } });
  mf = await startMailferry({
    dns,
    domains: ["example.test"],
    aliases: { "example.test": "forward-email=hello:user@dest.test" },
    env: { MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_SMTP_MAX_SIZE: "64KB" },
  });
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
  await sink.close();
});

async function data(message: string): Promise<string> {
  const { talk } = await SmtpTalk.connect(mf.smtpPort);
  await talk.send("EHLO client.test");
  await talk.send("MAIL FROM:<alice@sender.test>");
  await talk.send("RCPT TO:<hello@example.test>");
  await talk.send("DATA");
  const r = await talk.send(message.replace(/\r?\n/g, "\r\n") + "\r\n.");
  talk.close();
  return `${r.code} ${r.text}`;
}

const headers = "From: Alice <alice@sender.test>\nTo: hello@example.test\nSubject: checks\n";

describe("DATA checks", () => {
  test("over the size limit: 552 5.3.4", async () => {
    expect(await data(`${headers}\n${"x".repeat(998)}\n`.repeat(70))).toBe("552 5.3.4 Message size exceeds the limit of 65536 bytes");
  });

  test("no From header: 550 5.7.1", async () => {
    expect(await data("To: hello@example.test\nSubject: no from\n\nbody")).toBe("550 5.7.1 The message has no From header");
  });

  test("a From that is not an address: 550 5.7.1", async () => {
    expect(await data("From: not an address\nSubject: bad from\n\nbody")).toBe("550 5.7.1 The From header is not a valid address");
    expect(await data("From: a@sender.test\nFrom: b@sender.test\n\nbody")).toBe("550 5.7.1 The message has more than one From header");
  });

  test("more than 25 Received headers: 550 5.4.6 (loop); 25 pass", async () => {
    const received = (n: number) => Array.from({ length: n }, (_, i) => `Received: from hop${i}.test by hop${i + 1}.test; Wed, 25 Nov 2026 10:00:00 +0000\n`).join("");
    expect(await data(`${received(26)}${headers}\nbody`)).toBe("550 5.4.6 Too many Received headers (26): a mail loop?");
    expect(await data(`${received(25)}${headers}\nbody`)).toStartWith("250");
  });

  test("the GTUBE test string: 554 5.7.1", async () => {
    expect(await data(`${headers}\nThis is spam: ${GTUBE}\n`)).toBe("554 5.7.1 Message content rejected (GTUBE test string)");
  });

  test("checks run in order: a message without From that also has GTUBE gets the From answer", async () => {
    expect(await data(`Subject: both\n\n${GTUBE}`)).toBe("550 5.7.1 The message has no From header");
  });

  test("a message retried for more than 5 days: 550 5.4.7", async () => {
    const message = `${headers}Message-ID: <old@sender.test>\n\nretried for a week`;
    expect(await data(message)).toStartWith("250");
    const side = new Database(join(mf.dataDir, DATABASE_FILE));
    side.run("UPDATE fingerprints SET first_seen = first_seen - ?", [6 * 86_400_000]);
    side.close();
    expect(await data(message)).toBe("550 5.4.7 This message has been retried for more than 5 days; giving up");
  });
});
