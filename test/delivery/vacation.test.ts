// Vacation replies end to end: the sender's MX (a sink) receives the reply.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { authenticate } from "mailauth";
import { dkimRecordValue } from "../../src/mail/dkim-key.ts";
import { createResolver } from "../../src/dns/resolver.ts";
import { UserError } from "../../src/errors.ts";
import { listDkimKeys } from "../../src/store/dkim-keys.ts";
import { setVacation } from "../../src/store/vacations.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSinks } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";

let dns: DnsServer;
let mf: TestMailferry;
let dest: Sink, senders: Sink;
const today = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  [dest, senders] = (await startSinks([{ host: "127.0.0.2" }, { host: "127.0.0.9" }])) as [Sink, Sink];
  const mx = (domain: string, ip: string) => ({ [domain]: { MX: [{ priority: 10, exchange: `mx.${domain}` }] }, [`mx.${domain}`]: { A: [ip] } });
  dns = await startDnsServer({ ...mx("dest.test", "127.0.0.2"), ...mx("sender.test", "127.0.0.9"), ...mx("other.test", "127.0.0.9") });
  mf = await startMailferry({
    dns,
    domains: ["example.test"],
    aliases: { "example.test": "forward-email=away:me@dest.test,future:me@dest.test,catch@dest.test" },
    env: { MAILFERRY_OUTBOUND_PORT: String(dest.port) },
  });
  for (const k of await listDkimKeys(mf.appliance.store.db, "example.test")) dns.zones[`${k.selector}._domainkey.example.test`] = { TXT: [dkimRecordValue(k)] };
  await setVacation(mf.appliance.store.db, "example.test", "away", { subject: "Out of office", message: "<p>I am away until <b>Monday</b>.</p>", start: today, end: today });
  await setVacation(mf.appliance.store.db, "example.test", "future", { subject: "Later", message: "Away next year.", start: "2099-01-01", end: "2099-01-31" });
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
  await Promise.all([dest.close(), senders.close()]);
});

let n = 0;
async function mailFrom(from: string, to: string, extra = "") {
  const id = `vac${++n}`;
  const raw = `From: ${from}\r\nTo: ${to}\r\nSubject: Question ${id}\r\nMessage-ID: <${id}@sender.test>\r\nReferences: <earlier@sender.test>\r\n${extra}\r\nHello?\r\n`;
  const info = await sendMail(mf.smtpPort, { from, to, raw });
  expect(String(info.response)).toStartWith("250");
  await mf.appliance.outbox.runDue();
  return id;
}
const repliesTo = (id: string) => senders.messages.filter((m) => m.raw.toString().includes(`In-Reply-To: <${id}@sender.test>`));

describe("vacation replies", () => {
  test("the first mail gets one reply, with the right headers, signed, from the alias, to the sender, envelope <>", async () => {
    const id = await mailFrom("bob@sender.test", "away@example.test");
    const [reply, ...more] = repliesTo(id);
    expect(more).toHaveLength(0);
    expect(reply!.mailFrom).toBe("");
    expect(reply!.rcptTo).toEqual(["bob@sender.test"]);
    const text = reply!.raw.toString();
    expect(text).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.test;/);
    expect(text).toContain("From: away@example.test\r\n");
    expect(text).toContain("To: bob@sender.test\r\n");
    expect(text).toContain("Subject: Out of office\r\n");
    expect(text).toContain("Auto-Submitted: auto-replied\r\n");
    expect(text).toContain(`References: <earlier@sender.test> <${id}@sender.test>\r\n`);
    expect(text).toContain("I am away until Monday.");
    expect(text).not.toContain("<b>");
    const resolver = createResolver({ servers: [{ host: dns.host, port: dns.port }], timeout: 1000 }).forMailauth;
    const verified = await authenticate(reply!.raw, { ip: "127.0.0.1", helo: "mx.mailferry.test", sender: "", mta: "sender.test", resolver });
    expect(verified.dkim.results[0]!.status.result).toBe("pass");
  });

  test("a second mail from the same sender within 4 days gets none; other people at that (unknown) domain neither", async () => {
    expect(repliesTo(await mailFrom("bob@sender.test", "away@example.test"))).toHaveLength(0);
    expect(repliesTo(await mailFrom("carol@sender.test", "away@example.test"))).toHaveLength(0);
    expect(repliesTo(await mailFrom("dan@other.test", "away@example.test"))).toHaveLength(1);
  });

  test("none to bulk mail, no-reply senders or outside the date window", async () => {
    await mf.appliance.store.db.deleteFrom("vacation_replies").execute();
    expect(repliesTo(await mailFrom("bob@sender.test", "away@example.test", "Precedence: bulk\r\n"))).toHaveLength(0);
    expect(repliesTo(await mailFrom("noreply@sender.test", "away@example.test"))).toHaveLength(0);
    expect(repliesTo(await mailFrom("bob@sender.test", "future@example.test"))).toHaveLength(0);
    // The message itself was forwarded every time.
    expect(dest.messages.length).toBeGreaterThanOrEqual(7);
  });

  test("refused on catch-all and regex aliases, with a reason; limits on subject and message", async () => {
    const err = (p: Promise<unknown>) => p.then(() => null, (e) => e as UserError);
    expect((await err(setVacation(mf.appliance.store.db, "example.test", "*", { subject: "x", message: "y" })))!.message).toContain("only for exact aliases");
    expect((await err(setVacation(mf.appliance.store.db, "example.test", "away", { subject: "x".repeat(101), message: "y" })))!.field).toBe("subject");
    expect((await err(setVacation(mf.appliance.store.db, "example.test", "away", { subject: "x", message: "y".repeat(1001) })))!.field).toBe("message");
    expect((await err(setVacation(mf.appliance.store.db, "example.test", "away", { subject: "x", message: "y", start: "2026-12-31", end: "2026-12-01" })))!.field).toBe("end");
    expect((await err(setVacation(mf.appliance.store.db, "example.test", "away", { subject: "x", message: "y", start: "2026-02-30" })))!.field).toBe("start");
  });
});
