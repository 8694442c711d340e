// Two-phase DKIM rotation through the real forwarding path: a rotated key
// does not sign until DNS serves its record, so every forwarded copy carries a
// signature receivers can verify, checked with mailauth against the test DNS
// server (DKIM and ARC).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { authenticate } from "mailauth";
import { dkimRecordValue } from "../../src/mail/dkim-key.ts";
import { createResolver } from "../../src/dns/resolver.ts";
import { startDkimActivation } from "../../src/service/dkim-rotation.ts";
import { createAdmin, createSession } from "../../src/store/admins.ts";
import { listAudit } from "../../src/store/audit.ts";
import { listDkimKeys, rotateDkimKey, signingKey } from "../../src/store/dkim-keys.ts";
import { createLogger } from "../../src/log.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";

const DOMAIN = "rotate.test";
let dns: DnsServer;
let mf: TestMailferry;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: ["127.0.0.2"] } });
  mf = await startMailferry({ dns, domains: [DOMAIN], aliases: { [DOMAIN]: "forward-email=hello:user@dest.test" }, env: { MAILFERRY_OUTBOUND_PORT: String(sink.port) } });
}, 30_000);
afterAll(async () => {
  await mf?.stop();
  await dns?.close();
  await sink?.close();
});

const db = () => mf.appliance.store.db;

/** Puts the records of these selectors (and only these) in DNS, as the admin would after `domain dns`. */
async function publish(...selectors: string[]) {
  for (const name of Object.keys(dns.zones).filter((n) => n.endsWith(`._domainkey.${DOMAIN}`))) delete dns.zones[name];
  for (const k of await listDkimKeys(db(), DOMAIN)) if (selectors.includes(k.selector)) dns.zones[`${k.selector}._domainkey.${DOMAIN}`] = { TXT: [dkimRecordValue(k)] };
}

/** Polls an async probe until it gives a value, within a bound. */
async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error("timed out waiting");
    await Bun.sleep(50);
  }
}

let n = 0;
/** Forwards a message through mailferry; the selector of its ARC seal and what a receiver's verifier (mailauth, asking the test DNS) makes of it. */
async function forwardAndVerify() {
  const id = `rot${++n}`;
  const raw = `From: Sender <someone@sender.test>\r\nTo: hello@${DOMAIN}\r\nSubject: ${id}\r\nMessage-ID: <${id}@sender.test>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\nBody of ${id}.\r\n`;
  await sendMail(mf.smtpPort, { from: "someone@sender.test", to: `hello@${DOMAIN}`, raw });
  const copy = await eventually(async () => sink.messages.find((m) => m.raw.toString().includes(`Subject: ${id}\r\n`)));
  const resolver = createResolver({ servers: [{ host: dns.host, port: dns.port }], timeout: 1000, maxCacheEntries: 0 });
  const result = await authenticate(copy.raw, { ip: "127.0.0.1", helo: TEST_HOSTNAME, sender: "x@mx.mailferry.test", mta: "dest.test", resolver: resolver.forMailauth });
  // The From is the author's: the copy carries our ARC set only (docs/delivery-and-authentication.md, "What mailferry signs, and why").
  const seal = /^ARC-Seal: i=1;[^]*?\bs=([^;\s]+)/m.exec(copy.raw.toString());
  return { selector: seal?.[1], arc: result.arc && result.arc.status.result };
}

describe("dkim-rotate never makes a signature DNS cannot verify", () => {
  test("pending while DNS serves the old record only; the new key signs once a check sees its record", async () => {
    const [first] = await listDkimKeys(db(), DOMAIN);
    await publish(first!.selector);
    expect(await forwardAndVerify()).toEqual({ selector: first!.selector, arc: "pass" });

    const next = await rotateDkimKey(db(), DOMAIN, "second");
    expect(next.activated_at).toBeNull();
    // DNS has only the old record: copies are still signed with the old key, and verify.
    expect(await forwardAndVerify()).toEqual({ selector: first!.selector, arc: "pass" });

    // The admin UI's live check (the same as `dns check`) with the record not yet served changes nothing.
    const admin = await createAdmin(db(), "admin", "correct horse battery staple");
    const session = await createSession(db(), admin.id, "127.0.0.1", "test");
    const liveCheck = () => fetch(`${mf.httpUrl}domains/${DOMAIN}/check`, { headers: { cookie: `mf_session=${session.token}` } }).then((r) => r.text());
    expect(await liveCheck()).toContain("pending: mailferry signs with it once DNS serves this record");
    expect((await signingKey(db(), DOMAIN))!.selector).toBe(first!.selector);

    // A record at the new selector with another key is not the one: still pending.
    dns.zones[`second._domainkey.${DOMAIN}`] = { TXT: [dkimRecordValue({ algorithm: "rsa", public_key: first!.public_key })] };
    expect(await liveCheck()).toContain("publishes another key than this one");
    expect((await signingKey(db(), DOMAIN))!.selector).toBe(first!.selector);

    // DNS serves both records: the check switches signing to the new key, the old one is retired.
    await publish(first!.selector, "second");
    const page = await liveCheck();
    expect((await signingKey(db(), DOMAIN))!.selector).toBe("second");
    expect(page).toContain(`DKIM key (selector ${first!.selector} retired on `);
    expect(page).toMatch(/its record can be removed after \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    expect(await forwardAndVerify()).toEqual({ selector: "second", arc: "pass" });
    const [entry] = await listAudit(db(), 1);
    expect(entry).toMatchObject({ actor: "dns-check", action: "domain.dkim.activate", target: DOMAIN });
  }, 60_000);

  test("the server's periodic check activates a pending key once its record is served", async () => {
    const third = await rotateDkimKey(db(), DOMAIN, "third");
    const logs: Record<string, unknown>[] = [];
    const logger = createLogger({ level: "info", format: "json", write: (line) => logs.push(JSON.parse(line)) });
    const resolver = createResolver({ servers: [{ host: dns.host, port: dns.port }], timeout: 1000, maxCacheEntries: 0 });
    const job = startDkimActivation({ db: db(), lookup: (name, type) => resolver.resolve(name, type), logger, intervalMs: 100 });
    try {
      await Bun.sleep(400);
      expect((await signingKey(db(), DOMAIN))!.selector).toBe("second");
      await publish("second", "third");
      await eventually(async () => ((await signingKey(db(), DOMAIN))!.selector === "third" ? true : undefined), 5_000);
      expect(logs).toContainEqual(expect.objectContaining({ event: "dkim.activated", domain: DOMAIN, selector: third.selector, retired: ["second"] }));
    } finally {
      await job.stop();
    }
    expect(await forwardAndVerify()).toEqual({ selector: "third", arc: "pass" });
  }, 60_000);
});
