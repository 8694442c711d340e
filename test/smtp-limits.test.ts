// Session limits over real SMTP (docs/delivery-and-authentication.md, "Session
// limits"): the hard error limit, one summary row for a session's many refused
// recipients, and the session and DATA deadlines.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { listEvents } from "../src/store/events.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { startMailferry, type TestMailferry } from "./support/mailferry.ts";
import { SmtpTalk } from "./support/smtp-client.ts";

let dns: DnsServer;
let mf: TestMailferry;

beforeAll(async () => {
  dns = await startDnsServer({});
  mf = await startMailferry({
    dns,
    domains: ["example.test"],
    aliases: { "example.test": "forward-email=hello:someone@elsewhere.test" },
    env: { MAILFERRY_SMTP_HARD_ERROR_LIMIT: "8", MAILFERRY_SMTP_MAX_SESSION_DURATION: "3s", MAILFERRY_SMTP_MAX_DATA_DURATION: "2s", MAILFERRY_GREYLIST_DELAY: "0" },
  });
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
});

async function openSession() {
  const { talk } = await SmtpTalk.connect(mf.smtpPort);
  await talk.send("EHLO client.test");
  expect((await talk.send("MAIL FROM:<a@sender.test>")).code).toBe(250);
  return talk;
}

const closedWithin = async (talk: SmtpTalk, ms: number) => {
  for (const end = Date.now() + ms; Date.now() < end && !talk.closed; ) await Bun.sleep(50);
  return talk.closed;
};

describe("hard error limit", () => {
  test("the 8th refused RCPT gets 421 and the connection is closed; the mail log has 5 rows and one summary, not one per refusal", async () => {
    const talk = await openSession();
    const replies: number[] = [];
    for (let i = 1; i <= 8; i++) replies.push((await talk.send(`RCPT TO:<user${i}@unmanaged.test>`)).code);
    expect(replies).toEqual([550, 550, 550, 550, 550, 550, 550, 421]);
    expect(await closedWithin(talk, 2000)).toBe(true);
    await Bun.sleep(200);
    const sessionId = (await listEvents(mf.appliance.store.db, { stage: "rcpt", limit: 1 }))[0]!.session_id;
    const events = await listEvents(mf.appliance.store.db, { sessionId, stage: "rcpt" });
    const reasons = events.map((e) => e.reason).sort();
    expect(reasons).toEqual(["refusals_summarised", "relay_denied", "relay_denied", "relay_denied", "relay_denied", "relay_denied", "too_many_errors"]);
    const summary = events.find((e) => e.reason === "refusals_summarised")!;
    expect(JSON.parse(summary.detail ?? "{}")).toMatchObject({ refused: 3, reasons: { relay_denied: 3 } });
  });

  test("accepted recipients do not count", async () => {
    const talk = await openSession();
    for (let i = 0; i < 12; i++) expect((await talk.send("RCPT TO:<hello@example.test>")).code).toBe(250);
    talk.close();
  });
});

describe("deadlines", () => {
  test("a DATA trickled one byte at a time is closed with 421 after max_data_duration", async () => {
    const talk = await openSession();
    expect((await talk.send("RCPT TO:<hello@example.test>")).code).toBe(250);
    expect((await talk.send("DATA")).code).toBe(354);
    const started = Date.now();
    const trickle = setInterval(() => !talk.closed && talk.write("x"), 300);
    try {
      const reply = await talk.next(6000);
      expect(reply.code).toBe(421);
      expect(reply.text).toContain("DATA took longer than 2 seconds");
      expect(Date.now() - started).toBeLessThan(4000);
      expect(await closedWithin(talk, 2000)).toBe(true);
    } finally {
      clearInterval(trickle);
    }
  });

  test("a session kept busy past max_session_duration is closed with 421", async () => {
    const talk = await openSession();
    const started = Date.now();
    let reply = await talk.send("NOOP");
    while (reply.code === 250 && Date.now() - started < 8000) {
      await Bun.sleep(300);
      reply = await talk.send("NOOP");
    }
    expect(reply.code).toBe(421);
    expect(reply.text).toContain("Session lasted longer than 3 seconds");
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
