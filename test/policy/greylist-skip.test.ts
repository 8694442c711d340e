// Greylisting spares good senders: a forward-confirmed host of a large
// provider or under a brand TLD, and a sender that already passed once (the
// auto-allowlist). Real SMTP from 127.0.0.x source addresses whose PTR and A
// records the test DNS server serves; the mail log says why a sender skipped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { reverseName } from "../../src/dns/resolver.ts";
import { autoAllowlistDecision, greylistSkip, LIMITS } from "../../src/policy/abuse.ts";
import { knownSender } from "../../src/policy/providers.ts";
import { addDeny, forgetGreylist } from "../../src/store/senders.ts";
import { addAllow } from "../../src/store/allowlist.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { sendMail, SmtpTalk } from "../support/smtp-client.ts";

const HOUR = 3_600_000;

describe("which verified hosts skip greylisting (pure)", () => {
  test("a host under a listed provider domain, reported with the domain it matched", () => {
    expect(knownSender("mail-yw1-f41.google.com")).toEqual({ skipped: "provider", match: "google.com" });
    expect(knownSender("MAIL-DM6NAM10ON2041.outbound.protection.OUTLOOK.com.")).toEqual({ skipped: "provider", match: "outlook.com" });
    expect(knownSender("a8-33.smtp-out.amazonses.com")).toEqual({ skipped: "provider", match: "amazonses.com" });
    expect(knownSender("mout.kundenserver.de")).toEqual({ skipped: "provider", match: "kundenserver.de" });
  });

  test("a host under a brand TLD; the bare TLD is not a host", () => {
    expect(knownSender("mail.apple")).toEqual({ skipped: "brand_tld", match: "apple" });
    expect(knownSender("relay.mx.google")).toEqual({ skipped: "brand_tld", match: "google" });
    expect(knownSender("apple")).toBeNull();
  });

  test("look-alikes, open TLDs and unverified clients do not match", () => {
    expect(knownSender("google.com.evil.test")).toBeNull();
    expect(knownSender("mail.notgoogle.com")).toBeNull();
    expect(knownSender("mail.example.bond")).toBeNull();
    expect(knownSender("mail.example.com")).toBeNull();
    expect(knownSender(null)).toBeNull();
  });

  test("the allowlist is reported first; otherwise the verified host decides", () => {
    expect(greylistSkip({ allowlisted: true, verifiedHost: "mail-yw1-f41.google.com" })).toEqual({ skipped: "allowlist" });
    expect(greylistSkip({ allowlisted: false, verifiedHost: "mail-yw1-f41.google.com" })).toEqual({ skipped: "provider", match: "google.com" });
    expect(greylistSkip({ allowlisted: false, verifiedHost: null })).toBeNull();
  });

  test("the auto-allowlist spares a sender seen within 30 days and refreshes last_seen at most hourly", () => {
    const now = 1_000 * HOUR;
    const entry = { sender_key: "bigsender.test", passed_at: now - 40 * 24 * HOUR, last_seen: now - 10 * 60_000 };
    expect(autoAllowlistDecision(undefined, now)).toEqual({ spared: false, save: null });
    expect(autoAllowlistDecision(entry, now)).toEqual({ spared: true, save: null });
    expect(autoAllowlistDecision({ ...entry, last_seen: now - 2 * HOUR }, now)).toEqual({ spared: true, save: { ...entry, last_seen: now } });
    expect(autoAllowlistDecision({ ...entry, last_seen: now - LIMITS.greylistMemoryMs - 1 }, now)).toEqual({ spared: false, save: null });
  });
});

let dns: DnsServer;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({
    "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
    "mx.dest.test": { A: ["127.0.0.2"] },
    // A Gmail outbound host, forward-confirmed.
    [reverseName("127.0.0.60")]: { PTR: ["mail-yw1-f41.google.com"] },
    "mail-yw1-f41.google.com": { A: ["127.0.0.60"] },
    // A host under a brand TLD, forward-confirmed.
    [reverseName("127.0.0.61")]: { PTR: ["outbound.mail.apple"] },
    "outbound.mail.apple": { A: ["127.0.0.61"] },
    // Claims to be Google, but the name does not resolve back to it.
    [reverseName("127.0.0.62")]: { PTR: ["mail-yw1-f42.google.com"] },
    "mail-yw1-f42.google.com": { A: ["192.0.2.42"] },
  });
});
afterAll(async () => {
  await dns.close();
  await sink.close();
});

function instance(delaySeconds: string) {
  return startMailferry({
    dns,
    domains: ["example.test", "other.test"],
    aliases: { "example.test": "forward-email=hello:user@dest.test", "other.test": "forward-email=hi:user@dest.test" },
    env: { MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_GREYLIST_DELAY: delaySeconds },
  });
}

/** The RCPT reply a client at `from` gets for `to`. */
async function rcpt(mf: TestMailferry, from: string, to: string) {
  const { talk } = await SmtpTalk.connect(mf.smtpPort, "127.0.0.1", from);
  try {
    await talk.send("EHLO client.test");
    await talk.send("MAIL FROM:<someone@sender.test>");
    const r = await talk.send(`RCPT TO:<${to}>`);
    return `${r.code} ${r.text}`;
  } finally {
    talk.close();
  }
}

/** The facts of the last RCPT mail-log event from `ip`. */
async function lastRcptDetail(mf: TestMailferry, ip: string) {
  const row = await mf.appliance.store.db.selectFrom("events").select("detail").where("stage", "=", "rcpt").where("remote_ip", "=", ip).orderBy("id", "desc").executeTakeFirstOrThrow();
  return JSON.parse(row.detail!);
}

describe("over SMTP with a 5-minute greylisting delay", () => {
  let mf: TestMailferry;
  beforeAll(async () => {
    mf = await instance("300");
  });
  afterAll(() => mf.stop());

  test("a forward-confirmed Gmail host is accepted at once and forwarded; the mail log says why", async () => {
    const before = sink.messages.length;
    const sent = await sendMail(mf.smtpPort, { from: "alice@sender.test", to: "hello@example.test", subject: "one-time code", localAddress: "127.0.0.60" });
    expect(sent.response).toStartWith("250");
    await sink.waitForMessages(before + 1);
    expect(await lastRcptDetail(mf, "127.0.0.60")).toMatchObject({ verified_host: "mail-yw1-f41.google.com", greylist: { skipped: "provider", match: "google.com" } });
  });

  test("a forward-confirmed host under a brand TLD is accepted at once", async () => {
    expect(await rcpt(mf, "127.0.0.61", "hello@example.test")).toBe("250 Accepted");
    expect(await lastRcptDetail(mf, "127.0.0.61")).toMatchObject({ greylist: { skipped: "brand_tld", match: "apple" } });
  });

  test("a client without such a name is greylisted, also one whose Google PTR does not confirm", async () => {
    expect(await rcpt(mf, "127.0.0.63", "hello@example.test")).toStartWith("450 4.7.1 Greylisted");
    expect(await rcpt(mf, "127.0.0.62", "hello@example.test")).toStartWith("450 4.7.1 Greylisted");
    const detail = await lastRcptDetail(mf, "127.0.0.62");
    expect(detail).toMatchObject({ client_host: "mail-yw1-f42.google.com", verified_host: null });
    expect(detail.greylist).toBeUndefined();
  });

  test("an admin allowlist entry extends the list; the log names the allowlist", async () => {
    await addAllow(mf.appliance.store.db, "127.0.0.64");
    expect(await rcpt(mf, "127.0.0.64", "hello@example.test")).toBe("250 Accepted");
    expect(await lastRcptDetail(mf, "127.0.0.64")).toMatchObject({ greylist: { skipped: "allowlist" } });
  });

  test("a denylist entry overrides a listed provider", async () => {
    await addDeny(mf.appliance.store.db, "google.com", { reason: "test override" });
    const { talk, greeting } = await SmtpTalk.connect(mf.smtpPort, "127.0.0.1", "127.0.0.60");
    talk.close();
    expect(`${greeting.code} ${greeting.text}`).toStartWith("421 4.7.1 google.com is on the denylist");
  });
});

describe("the auto-allowlist", () => {
  test("a sender that passed greylisting once is not greylisted for another domain", async () => {
    const mf = await instance("1");
    try {
      expect(await rcpt(mf, "127.0.0.70", "hello@example.test")).toStartWith("450 4.7.1 Greylisted");
      await Bun.sleep(1100);
      expect(await rcpt(mf, "127.0.0.70", "hello@example.test")).toBe("250 Accepted");
      // A domain it never wrote to: accepted at once, and the log says why.
      expect(await rcpt(mf, "127.0.0.70", "hi@other.test")).toBe("250 Accepted");
      expect(await lastRcptDetail(mf, "127.0.0.70")).toMatchObject({ greylist: { skipped: "auto_allowlist", match: "127.0.0.70" } });
      // Another sender to that domain is still greylisted.
      expect(await rcpt(mf, "127.0.0.71", "hi@other.test")).toStartWith("450 4.7.1 Greylisted");
      const row = await mf.appliance.store.db.selectFrom("greylist_senders").selectAll().where("sender_key", "=", "127.0.0.70").executeTakeFirstOrThrow();
      expect(row.passed_at).toBeGreaterThan(Date.now() - 5000);
      // Forgetting its greylist entry (Lists page) takes it off the auto-allowlist too.
      await forgetGreylist(mf.appliance.store.db, "127.0.0.70|example.test");
      expect(await rcpt(mf, "127.0.0.70", "hello@example.test")).toStartWith("450 4.7.1 Greylisted");
    } finally {
      await mf.stop();
    }
  });
});
