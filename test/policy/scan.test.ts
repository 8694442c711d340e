// Content scanning with a real rspamd on loopback (Debian's package).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Rspamd, rspamdInstalled, startRspamd } from "../support/rspamd.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";
import { updateDomainSettings } from "../../src/store/domains.ts";

const hasRspamd = rspamdInstalled();
if (!hasRspamd) console.warn("\n*** rspamd is NOT installed: the rspamd scanning tests are SKIPPED. Install it: apt-get install rspamd ***\n");

// rspamd's test patterns: X… is rejected, Y… gets "add header".
const pattern = (first: string) => `${first}JS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X`;

let dns: DnsServer;
let sink: Sink;
let rspamd: Rspamd | undefined;
let mf: TestMailferry;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: ["127.0.0.2"] } });
  if (hasRspamd) {
    rspamd = await startRspamd();
    mf = await startMailferry({
      dns,
      domains: ["example.test", "noscan.test", "catchall.test"],
      aliases: { "example.test": "forward-email=hello:user@dest.test", "noscan.test": "forward-email=hello:user@dest.test", "catchall.test": "forward-email=user@dest.test" },
      env: { MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_SCAN_RSPAMD_URL: rspamd.url, MAILFERRY_CATCHALL_THRESHOLD: "2" },
    });
    await updateDomainSettings(mf.appliance.store.db, "noscan.test", { scanSpam: false });
  }
}, 40_000);
afterAll(async () => {
  await mf?.stop();
  await rspamd?.stop();
  await dns.close();
  await sink.close();
});

let n = 0;
const message = (body: string) => {
  const id = `scan${++n}`;
  return { id, raw: `From: Alice <alice@sender.test>\r\nTo: hello@example.test\r\nSubject: Lunch tomorrow ${id}\r\nMessage-ID: <${id}@sender.test>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\n${body}\r\n` };
};
const send = (raw: string, to = "hello@example.test", port = () => mf.smtpPort) =>
  sendMail(port(), { from: "alice@sender.test", to, raw }).then(
    (i) => String(i.response),
    (e) => `${e.responseCode} ${String(e.response).replace(/^\d{3} /, "")}`,
  );
const copy = (id: string) => sink.messages.find((m) => m.raw.toString().includes(`Message-ID: <${id}@sender.test>`));

describe.skipIf(!hasRspamd)("rspamd", () => {
  test("a GTUBE-like spam is rejected by rspamd's verdict", async () => {
    const reply = await send(message(pattern("X")).raw);
    expect(reply).toMatch(/^554 5\.7\.1 Message rejected as spam \(score [\d.]+ of [\d.]+\): Gtube pattern$/);
  });

  test("a clean message passes, without spam headers", async () => {
    const m = message("Shall we meet at noon? Best, Alice");
    expect(await send(m.raw)).toStartWith("250");
    expect(copy(m.id)!.raw.toString()).not.toContain("X-Spam-Flag");
  });

  test("the add-header action adds X-Spam-* headers and delivers", async () => {
    const m = message(pattern("Y"));
    expect(await send(m.raw)).toStartWith("250");
    expect(copy(m.id)!.raw.toString()).toMatch(/X-Spam-Flag: YES\r\nX-Spam-Score: [\d.]+ \/ [\d.]+\r\nX-Spam-Status: Yes, action=add header, symbols=.*GTUBE/);
  });

  test("the learning catch-all counts rspamd's add-header verdict as spam: a name getting only that is suggested (docs/aliases.md)", async () => {
    const state = () => mf.appliance.store.db.selectFrom("catchall_names").select(["state", "spam", "good"]).where("name", "=", "junk").executeTakeFirst();
    expect(await send(message(pattern("Y")).raw, "junk@catchall.test")).toStartWith("250");
    expect(await state()).toEqual({ state: "learning", spam: 1, good: 0 });
    expect(await send(message(pattern("Y")).raw, "junk@catchall.test")).toStartWith("250");
    expect(await state()).toEqual({ state: "suggested", spam: 2, good: 0 });
    // A clean message to another name counts as good.
    expect(await send(message("Shall we meet at noon? Best, Alice").raw, "alice@catchall.test")).toStartWith("250");
    expect(await mf.appliance.store.db.selectFrom("catchall_names").select(["spam", "good"]).where("name", "=", "alice").executeTakeFirst()).toEqual({ spam: 0, good: 1 });
  });

  test("a domain with scanning switched off is not scanned (only the built-in GTUBE check applies)", async () => {
    expect(await send(message(pattern("X")).raw, "hello@noscan.test")).toBe("554 5.7.1 Message content rejected (GTUBE test string)");
    const m = message(pattern("Y"));
    expect(await send(m.raw, "hello@noscan.test")).toStartWith("250");
    expect(copy(m.id)!.raw.toString()).not.toContain("X-Spam-Flag");
  });

  test("rspamd unreachable: 421 by default, delivered unscanned when configured to fail open", async () => {
    const closed = await startMailferry({ dns, domains: ["example.test"], aliases: { "example.test": "forward-email=hello:user@dest.test" }, env: { MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_SCAN_RSPAMD_URL: "http://127.0.0.1:9" } });
    const open = await startMailferry({ dns, domains: ["example.test"], aliases: { "example.test": "forward-email=hello:user@dest.test" }, env: { MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_SCAN_RSPAMD_URL: "http://127.0.0.1:9", MAILFERRY_SCAN_FAIL_OPEN: "true" } });
    try {
      expect(await send(message("hello").raw, "hello@example.test", () => closed.smtpPort)).toStartWith("421 4.7.0 Content scanner unavailable");
      expect(await send(message("hello").raw, "hello@example.test", () => open.smtpPort)).toStartWith("250");
    } finally {
      await closed.stop();
      await open.stop();
    }
  });
});
