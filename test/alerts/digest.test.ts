// The digest (`[alerts] digest`, docs/operations.md "Alerts"): the first check
// only starts its period; once a period has passed (the test moves the start of
// the period a day back, as the other alert tests age the mail log) the next
// check sends the counts of the mail log on every channel, once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DIGEST_PERIOD_MS, digestWindow } from "../../src/alerts/digest.ts";
import { GTUBE } from "../../src/smtp/content.ts";
import { digestSince, saveDigestSince } from "../../src/store/alerts.ts";
import type { HttpCollector } from "../support/http-collector.ts";
import type { TestMailferry } from "../support/mailferry.ts";
import type { Sink } from "../support/sink.ts";
import { type AlertSetup, startAlertSetup } from "./alert-setup.ts";
import { SmtpTalk } from "../support/smtp-client.ts";
import { waitFor } from "../support/wait.ts";

let setup: AlertSetup;
let mf: TestMailferry;
let admin: Sink;
let http: HttpCollector;

interface DigestPost {
  event: string;
  period: string;
  reasons: Record<string, number>;
  refused_senders: { sender: string; count: number }[];
  aliases: { alias: string; count: number }[];
}
const digests = () => http.json<DigestPost>("/hook").filter((p) => p.event === "digest");

beforeAll(async () => {
  setup = await startAlertSetup({ aliases: "forward-email=hello:user@dest.test,other:user@dest.test", env: { MAILFERRY_ALERTS_DIGEST: "daily" } });
  ({ mf, admin, http } = setup);
});
afterAll(() => setup?.close());

/** One message from `from` to `to`: the last reply (RCPT's when refused, else DATA's). */
async function send(from: string, to: string, body: string): Promise<number> {
  const { talk } = await SmtpTalk.connect(mf.smtpPort);
  await talk.send("EHLO client.test");
  await talk.send(`MAIL FROM:<${from}>`);
  let r = await talk.send(`RCPT TO:<${to}>`);
  if (r.code < 400) {
    await talk.send("DATA");
    r = await talk.send(`From: ${from}\r\nTo: ${to}\r\nSubject: digest\r\n\r\n${body}\r\n.`);
  }
  talk.close();
  return r.code;
}

async function until(probe: () => Promise<boolean>, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !(await probe()); await Bun.sleep(100)) if (Date.now() > end) throw new Error("timed out");
}

describe("the digest", () => {
  test("the first check starts the period and sends nothing", async () => {
    await until(async () => (await digestSince(mf.appliance.store.db)) !== null, 10_000);
    await Bun.sleep(1500);
    expect(digests()).toHaveLength(0);
    expect(admin.messages).toHaveLength(0);
  }, 20_000);

  test("a day later: counts by reason, the senders refused most and the aliases, on every channel, once", async () => {
    expect(await send("alice@sender.test", "hello@example.test", "one")).toBe(250);
    expect(await send("alice@sender.test", "hello@example.test", "two")).toBe(250);
    expect(await send("spammer@bad.test", "nobody@example.test", "x")).toBe(550);
    expect(await send("spammer@bad.test", "other@example.test", GTUBE)).toBe(554);
    await saveDigestSince(mf.appliance.store.db, Date.now() - DIGEST_PERIOD_MS.daily - 60_000);

    await admin.waitForMessages(1, 15_000);
    await waitFor(() => digests().length >= 1 && http.requests.some((r) => r.path === "/ntfy/mailferry"), 10_000);
    const [digest] = digests();
    expect(digest).toMatchObject({ period: "daily", reasons: { delivered: 2, unknown_recipient: 1, gtube: 1 } });
    expect(Object.values(digest!.reasons).reduce((a, b) => a + b, 0)).toBe(4);
    expect(digest!.refused_senders).toEqual([{ sender: "spammer@bad.test", count: 2 }]);
    expect(digest!.aliases).toEqual([
      { alias: "hello@example.test", count: 2 },
      { alias: "other@example.test", count: 1 },
    ]);
    const mail = admin.messages[0]!.raw.toString();
    expect(mail).toContain("Subject: [mailferry] Daily digest: 4 answers, 2 refused or deferred");
    expect(mail).toMatch(/ {5}2 {2}spammer@bad\.test/);
    const ntfy = http.requests.find((r) => r.path === "/ntfy/mailferry")!;
    expect([ntfy.headers.get("priority"), ntfy.headers.get("tags")]).toEqual(["default", "bar_chart"]);

    // The next period starts now: further checks send nothing.
    await Bun.sleep(2500);
    expect(digests()).toHaveLength(1);
    expect(admin.messages).toHaveLength(1);
  }, 40_000);
});

describe("when a digest is due (pure)", () => {
  const day = DIGEST_PERIOD_MS.daily;
  test("never when off or before its first period started; after a whole period; at most one period back", () => {
    expect(digestWindow("off", 0, 10 * day)).toBeNull();
    expect(digestWindow("daily", null, 10 * day)).toBeNull();
    expect(digestWindow("daily", 10 * day, 11 * day - 1)).toBeNull();
    expect(digestWindow("daily", 10 * day, 11 * day)).toEqual({ from: 10 * day, until: 11 * day });
    expect(digestWindow("weekly", 10 * day, 16 * day)).toBeNull();
    expect(digestWindow("weekly", 0, 30 * day)).toEqual({ from: 23 * day, until: 30 * day });
  });
});
