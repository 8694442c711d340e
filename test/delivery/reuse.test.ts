// Outbound connections kept open for the next message to the same
// destination: real relays and sink MX servers on 127.0.0.x, found through
// the test DNS server.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { REUSE_LIMITS, type ReuseLimits } from "../../src/delivery/connection-cache.ts";
import type { Relay } from "../../src/delivery/relay.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry } from "../support/mailferry.ts";
import { envelopeTo, startTestRelay } from "../support/relay.ts";
import { type Sink, startSink, startSinks } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";
import { waitFor } from "../support/wait.ts";

let dns: DnsServer;
let a: Sink, b: Sink, aOtherPort: Sink, idleCloser: Sink, noRset: Sink, picky: Sink, brokenTls: Sink, dying: Sink, quiet: Sink, shutdown: Sink, appSink: Sink, child: Sink;

const mx = (domain: string, ip: string) => ({ [domain]: { MX: [{ priority: 10, exchange: `mx.${domain}` }] }, [`mx.${domain}`]: { A: [ip] } });

beforeAll(async () => {
  [a, b] = (await startSinks([{ host: "127.0.0.21" }, { host: "127.0.0.22" }])) as [Sink, Sink];
  aOtherPort = await startSink({ host: "127.0.0.21" });
  idleCloser = await startSink({ host: "127.0.0.23", idleTimeoutMs: 300 });
  noRset = await startSink({ host: "127.0.0.24", refuseRset: true, onRcpt: (rcpt) => (rcpt.startsWith("nobody@") ? { code: 550, text: "5.1.1 no such user" } : undefined) });
  picky = await startSink({
    host: "127.0.0.25",
    onRcpt: (rcpt) => (rcpt.startsWith("nobody@") ? { code: 550, text: "5.1.1 no such user" } : undefined),
    onData: (m) => (m.raw.toString().includes("Subject: refuse") ? { code: 554, text: "5.6.0 not this one" } : undefined),
  });
  brokenTls = await startSink({ host: "127.0.0.26", tls: "broken" });
  dying = await startSink({ host: "127.0.0.27", dropAfterDataBytes: 2000 });
  quiet = await startSink({ host: "127.0.0.28" });
  shutdown = await startSink({ host: "127.0.0.29" });
  appSink = await startSink({ host: "127.0.0.30" });
  child = await startSink({ host: "127.0.0.31" });
  dns = await startDnsServer({
    ...mx("a.test", "127.0.0.21"),
    ...mx("b.test", "127.0.0.22"),
    ...mx("idle.test", "127.0.0.23"),
    ...mx("norset.test", "127.0.0.24"),
    ...mx("picky.test", "127.0.0.25"),
    ...mx("broken-tls.test", "127.0.0.26"),
    ...mx("dying.test", "127.0.0.27"),
    ...mx("quiet.test", "127.0.0.28"),
    ...mx("shutdown.test", "127.0.0.29"),
    ...mx("app.test", "127.0.0.30"),
    ...mx("child.test", "127.0.0.31"),
  });
});

const relays: Relay[] = [];
function relay(reuse?: Partial<ReuseLimits>): Relay {
  const r = startTestRelay(dns, reuse ? { ...REUSE_LIMITS, ...reuse } : undefined);
  relays.push(r);
  return r;
}
afterEach(() => relays.splice(0).forEach((r) => r.close()));
afterAll(async () => {
  await dns.close();
  await Promise.all([a, b, aOtherPort, idleCloser, noRset, picky, brokenTls, dying, quiet, shutdown, appSink, child].map((s) => s.close()));
});

let counter = 0;
/** Sends one message to `address` at `sink`; its result. */
async function deliver(r: Relay, address: string, sink: Sink, id = `m${++counter}`, body?: string) {
  const [result] = await r.send([envelopeTo(address, sink.port, id, body)]);
  return result!;
}
const received = (sink: Sink, id: string) => sink.messages.filter((m) => m.raw.toString().includes(`Message-ID: <${id}@sender.test>`));

describe("reusing connections", () => {
  test("two messages to the same destination in turn share one connection; both arrive, reported with the TLS actually used", async () => {
    const r = relay();
    const before = a.connections;
    const first = await deliver(r, "x@a.test", a, "seq-1");
    const second = await deliver(r, "y@a.test", a, "seq-2");
    expect([first.reply.code, second.reply.code]).toEqual([250, 250]);
    expect(a.connections - before).toBe(1);
    expect(received(a, "seq-1")).toHaveLength(1);
    expect(received(a, "seq-2")).toHaveLength(1);
    expect(first.tls).toMatch(/^TLSv1\.[23]$/);
    expect(second.tls).toBe(first.tls);
    expect(second.mx).toBe("mx.a.test");
  });

  test("different hosts and different ports do not share connections", async () => {
    const r = relay();
    expect(a.port).toBe(b.port);
    const before = [a.connections, b.connections, aOtherPort.connections];
    for (const round of [1, 2]) {
      expect((await deliver(r, "x@a.test", a, `hosts-a-${round}`)).reply.code).toBe(250);
      expect((await deliver(r, "x@b.test", b, `hosts-b-${round}`)).reply.code).toBe(250);
      expect((await deliver(r, "x@a.test", aOtherPort, `hosts-port-${round}`)).reply.code).toBe(250);
    }
    expect([a.connections, b.connections, aOtherPort.connections].map((n, i) => n - before[i]!)).toEqual([1, 1, 1]);
    for (const round of [1, 2]) {
      expect(received(a, `hosts-a-${round}`)).toHaveLength(1);
      expect(received(b, `hosts-b-${round}`)).toHaveLength(1);
      expect(received(aOtherPort, `hosts-port-${round}`)).toHaveLength(1);
      expect(received(a, `hosts-port-${round}`)).toHaveLength(0);
    }
  });

  test("after plain text because STARTTLS broke, the plain connection is reused and reported as plain", async () => {
    const r = relay();
    const first = await deliver(r, "x@broken-tls.test", brokenTls);
    const afterFirst = brokenTls.connections;
    const second = await deliver(r, "x@broken-tls.test", brokenTls);
    expect([first.reply.code, second.reply.code]).toEqual([250, 250]);
    expect([first.tls, second.tls]).toEqual([null, null]);
    expect(brokenTls.connections).toBe(afterFirst);
  });

  test("at most maxTransactions messages go over one connection", async () => {
    const r = relay({ maxTransactions: 2 });
    const before = a.connections;
    for (let i = 1; i <= 5; i++) expect((await deliver(r, "x@a.test", a, `cap-${i}`)).reply.code).toBe(250);
    expect(a.connections - before).toBe(3);
    for (let i = 1; i <= 5; i++) expect(received(a, `cap-${i}`)).toHaveLength(1);
  });

  test("a connection older than maxAgeMs is not reused", async () => {
    const r = relay({ maxAgeMs: 200 });
    const before = a.connections;
    await deliver(r, "x@a.test", a);
    await Bun.sleep(300);
    expect((await deliver(r, "x@a.test", a)).reply.code).toBe(250);
    expect(a.connections - before).toBe(2);
  });
});

describe("a reused connection that no longer works is replaced, and nothing is sent twice", () => {
  /** Delivers to `sink` twice, `between` the two: the second message must arrive once, over a new connection. The first's result. */
  async function secondNeedsNewConnection(sink: Sink, address: string, between: () => unknown, firstBody?: string) {
    const r = relay();
    const before = sink.connections;
    const first = await deliver(r, address, sink, `${address}-first`, firstBody);
    await between();
    expect((await deliver(r, address, sink, `${address}-second`)).reply.code).toBe(250);
    expect(sink.connections - before).toBe(2);
    expect(received(sink, `${address}-second`)).toHaveLength(1);
    return first;
  }

  test("the destination closed it while idle (421 on its idle timeout)", async () => {
    const first = await secondNeedsNewConnection(idleCloser, "x@idle.test", async () => expect(await waitFor(() => idleCloser.open === 0)).toBe(true));
    expect(first.reply.code).toBe(250);
    expect(received(idleCloser, "x@idle.test-first")).toHaveLength(1);
  });

  test("the destination dropped it between messages", async () => {
    await secondNeedsNewConnection(a, "dropped@a.test", () => a.dropConnections());
  });

  test("it refuses RSET", async () => {
    await secondNeedsNewConnection(noRset, "x@norset.test", () => {});
    expect(received(noRset, "x@norset.test-first")).toHaveLength(1);
  });

  test("its transaction died without an answer", async () => {
    const died = await secondNeedsNewConnection(dying, "x@dying.test", () => {}, "x".repeat(50_000) + "\r\n");
    expect(died.reply.code).toBe(421);
  });
});

describe("refused transactions: the connection is reused after RSET", () => {
  test("refused at RCPT and at DATA, the next message still goes over the same connection and arrives", async () => {
    const r = relay();
    const rcpt = await deliver(r, "nobody@picky.test", picky);
    const data = await deliver(r, "x@picky.test", picky, "refuse-data");
    const ok = await deliver(r, "x@picky.test", picky, "picky-ok");
    expect(`${rcpt.reply.code} ${rcpt.reply.text}`).toBe("550 no such user");
    expect(`${data.reply.code} ${data.reply.text}`).toBe("554 not this one");
    expect(ok.reply.code).toBe(250);
    expect(picky.connections).toBe(1);
    expect(received(picky, "picky-ok")).toHaveLength(1);
  });

  test("in one send, a refused envelope does not spoil the next transaction on the same connection", async () => {
    const r = relay();
    const before = picky.connections;
    const results = await r.send([envelopeTo("nobody@picky.test", picky.port, "one-send-refused"), envelopeTo("x@picky.test", picky.port, "one-send-ok")]);
    expect(results.map((x) => x.reply.code)).toEqual([550, 250]);
    expect(picky.connections - before).toBe(1);
    expect(received(picky, "one-send-ok")).toHaveLength(1);
  });

  test("in one send, when RSET after a refused envelope fails, the next envelope gets 421 (the sender retries it)", async () => {
    const r = relay();
    const results = await r.send([envelopeTo("nobody@norset.test", noRset.port, "norset-refused"), envelopeTo("x@norset.test", noRset.port, "norset-after")]);
    expect(results.map((x) => `${x.reply.code} ${x.reply.text}`)).toEqual(["550 no such user", "421 connection to mx.norset.test failed: RSET was not accepted"]);
    expect(received(noRset, "norset-after")).toHaveLength(0);
  });
});

describe("idle connections close by themselves", () => {
  test("after the idle time", async () => {
    const r = relay({ idleMs: 200 });
    await deliver(r, "x@quiet.test", quiet);
    expect(quiet.open).toBe(1);
    expect(await waitFor(() => quiet.open === 0)).toBe(true);
    expect((await deliver(r, "x@quiet.test", quiet)).reply.code).toBe(250);
    expect(quiet.connections).toBe(2);
  });

  test("when the relay is closed; it still delivers after that, without keeping connections", async () => {
    const r = relay();
    await deliver(r, "x@shutdown.test", shutdown);
    expect(shutdown.open).toBe(1);
    r.close();
    // Well before the 5 s idle time would have closed it.
    expect(await waitFor(() => shutdown.open === 0, 2500)).toBe(true);
    expect((await deliver(r, "x@shutdown.test", shutdown)).reply.code).toBe(250);
    expect(await waitFor(() => shutdown.open === 0)).toBe(true);
    expect(shutdown.connections).toBe(2);
  });

  test("when mailferry stops (after forwarding two messages over one connection)", async () => {
    const mf = await startMailferry({ dns, domains: ["example.test"], aliases: { "example.test": "forward-email=hello:you@app.test" }, env: { MAILFERRY_OUTBOUND_PORT: String(appSink.port) } });
    try {
      for (const subject of ["app-1", "app-2"]) {
        expect((await sendMail(mf.smtpPort, { from: "alice@sender.test", to: "hello@example.test", subject })).response).toStartWith("250");
      }
      expect(appSink.messages).toHaveLength(2);
      expect(appSink.connections).toBe(1);
      expect(appSink.open).toBe(1);
    } finally {
      await mf.stop();
    }
    // Well before the 5 s idle time would have closed it.
    expect(await waitFor(() => appSink.open === 0, 2500)).toBe(true);
  });

  test("an idle connection never keeps the process alive", async () => {
    const proc = Bun.spawn([process.execPath, join(import.meta.dir, "../fixtures/relay-idle-exit.ts"), String(dns.port), "x@child.test", String(child.port)], { stdout: "pipe", stderr: "pipe" });
    // The child keeps its connection idle for 10 minutes: only an unref'd one lets it exit before this.
    const killer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(killer);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toBe("250\n250\n");
    expect(child.connections).toBe(1);
  }, 30_000);
});
