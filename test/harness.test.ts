// The test harness itself: later suites rely on these sinks behaving as told.
import { afterAll, describe, expect, test } from "bun:test";
import nodemailer from "nodemailer";
import { type Sink, startSink, startSinks } from "./support/sink.ts";

const sinks: Sink[] = [];
afterAll(() => Promise.all(sinks.map((s) => s.close())));

function client(port: number, host: string, opts: { ignoreTLS?: boolean; requireTLS?: boolean } = {}) {
  return nodemailer.createTransport({ host, port, secure: false, tls: { rejectUnauthorized: false }, connectionTimeout: 3000, ...opts });
}

describe("sink SMTP servers", () => {
  test("record envelope and exact message bytes, with TLS details", async () => {
    const sink = await startSink({ host: "127.0.0.2" });
    sinks.push(sink);
    const raw = "From: a@x.test\r\nTo: b@y.test\r\nSubject: bytes\r\n\r\nline one\r\n.dot line\r\n";
    await client(sink.port, sink.host, { requireTLS: true }).sendMail({ envelope: { from: "a@x.test", to: ["b@y.test", "c@y.test"] }, raw });
    const [message] = await sink.waitForMessages(1);
    expect(message!.mailFrom).toBe("a@x.test");
    expect(message!.rcptTo).toEqual(["b@y.test", "c@y.test"]);
    expect(message!.raw.toString()).toBe(raw);
    expect(message!.secure).toBe(true);
    expect(sink.connections).toBe(1);
  });

  test("can refuse recipients and DATA with given codes", async () => {
    const sink = await startSink({
      host: "127.0.0.3",
      onRcpt: (rcpt) => (rcpt.startsWith("gone") ? { code: 550, text: "5.1.1 no such user" } : undefined),
      onData: (m) => (m.rcptTo.includes("slow@y.test") ? { code: 451, text: "4.7.1 try later" } : undefined),
    });
    sinks.push(sink);
    const refused = await client(sink.port, sink.host).sendMail({ envelope: { from: "a@x.test", to: ["gone@y.test"] }, raw: "Subject: x\r\n\r\nx\r\n" }).catch((e) => e);
    expect(refused.responseCode).toBe(550);
    expect(refused.response).toContain("5.1.1 no such user");
    const deferred = await client(sink.port, sink.host).sendMail({ envelope: { from: "a@x.test", to: ["slow@y.test"] }, raw: "Subject: x\r\n\r\nx\r\n" }).catch((e) => e);
    expect(deferred.responseCode).toBe(451);
    expect(sink.messages).toHaveLength(0);
  });

  test("broken TLS fails the handshake; the same sink still accepts plain SMTP", async () => {
    const sink = await startSink({ host: "127.0.0.4", tls: "broken" });
    sinks.push(sink);
    const err = await client(sink.port, sink.host, { requireTLS: true }).sendMail({ envelope: { from: "a@x.test", to: ["b@y.test"] }, raw: "Subject: x\r\n\r\nx\r\n" }).catch((e) => e);
    expect(err.code).toBe("ESOCKET");
    await client(sink.port, sink.host, { ignoreTLS: true }).sendMail({ envelope: { from: "a@x.test", to: ["b@y.test"] }, raw: "Subject: x\r\n\r\nx\r\n" });
    expect(sink.messages).toHaveLength(1);
    expect(sink.messages[0]!.secure).toBe(false);
    expect(sink.connections).toBe(2);
  });

  test("can drop the connection in the middle of DATA", async () => {
    const sink = await startSink({ host: "127.0.0.5", dropAfterDataBytes: 1000 });
    sinks.push(sink);
    const err = await client(sink.port, sink.host).sendMail({ envelope: { from: "a@x.test", to: ["b@y.test"] }, raw: "Subject: x\r\n\r\n" + "y".repeat(100_000) + "\r\n" }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(sink.messages).toHaveLength(0);
  });

  test("several sinks share one port on different loopback addresses", async () => {
    const group = await startSinks([{ host: "127.0.0.6" }, { host: "127.0.0.7", tls: "none" }]);
    sinks.push(...group);
    expect(group[0]!.port).toBe(group[1]!.port);
    expect(group[1]!.host).toBe("127.0.0.7");
  });
});
