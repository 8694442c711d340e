// A catch-all being abused (docs/operations.md, "Alerts"): messages to one
// name refused at DATA raise an alert at the webhook; the dashboard's one
// click refuses the name (550 at RCPT from then on); the alert resolves once
// the refusals are older than 15 minutes.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { GTUBE } from "../../src/smtp/content.ts";
import { createAdmin, createSession } from "../../src/store/admins.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { type HttpCollector, startHttpCollector } from "../support/http-collector.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { SmtpTalk } from "../support/smtp-client.ts";
import { waitFor } from "../support/wait.ts";

let dns: DnsServer;
let mf: TestMailferry;
let http: HttpCollector;
const seen = () => http.json<{ event: string; key: string }>("/hook").map((e) => `${e.event} ${e.key}`);

beforeAll(async () => {
  http = startHttpCollector();
  dns = await startDnsServer({});
  mf = await startMailferry({
    dns,
    domains: ["example.test"],
    aliases: { "example.test": "forward-email=catch@x.test" },
    env: { MAILFERRY_ALERTS_WEBHOOK_URL: `${http.url}/hook`, MAILFERRY_ALERTS_CHECK_INTERVAL: "1s", MAILFERRY_ALERTS_ALIAS_REFUSALS: "2", MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true" },
  });
});
afterAll(async () => {
  await mf.stop();
  http.stop();
  await dns.close();
});

/** The reply to RCPT TO, and with `body` the reply to DATA. */
async function send(to: string, body?: string): Promise<string> {
  const { talk } = await SmtpTalk.connect(mf.smtpPort);
  await talk.send("EHLO client.test");
  await talk.send("MAIL FROM:<spammer@sender.test>");
  let r = await talk.send(`RCPT TO:<${to}>`);
  if (body !== undefined && r.code < 400) {
    await talk.send("DATA");
    r = await talk.send(`From: spammer@sender.test\r\nSubject: offer\r\n\r\n${body}\r\n.`);
  }
  talk.close();
  return `${r.code} ${r.text}`;
}

test("messages to one name refused at DATA raise an alert once; the dashboard refuses the name in one click", async () => {
  for (let i = 0; i < 2; i++) expect(await send("junk@example.test", `${GTUBE} ${i}`)).toStartWith("554");
  await waitFor(() => seen().length >= 1, 10_000);
  expect(seen()).toEqual(["alert.started alias_refusals:junk@example.test"]);

  const db = mf.appliance.store.db;
  const session = await createSession(db, (await createAdmin(db, "admin", "correct horse battery staple")).id, "127.0.0.1", "test");
  const cookie = `mf_session=${session.token}`;
  const page = await (await fetch(mf.httpUrl, { headers: { cookie } })).text();
  const form = /<form method="post" action="\/aliases"[^>]*>([\s\S]*?)<\/form>/.exec(page)?.[1];
  expect(form).toContain("Refuse junk@example.test");
  const fields = Object.fromEntries([...form!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  const res = await fetch(`${mf.httpUrl}aliases`, { method: "POST", body: new URLSearchParams(fields), headers: { cookie }, redirect: "manual" });
  expect(res.status).toBe(302);
  expect(await send("junk@example.test")).toStartWith("550 5.2.1");
  expect(await send("other@example.test")).toStartWith("250");
  await Bun.sleep(2500);
  expect(seen().length).toBe(1);
}, 30_000);

test("once the refusals are older than 15 minutes, the alert is resolved, once", async () => {
  await mf.appliance.store.db.updateTable("events").set((eb) => ({ at: eb("at", "-", 16 * 60_000) })).execute();
  await waitFor(() => seen().length >= 2, 10_000);
  await Bun.sleep(2500);
  expect(seen()).toEqual(["alert.started alias_refusals:junk@example.test", "alert.resolved alias_refusals:junk@example.test"]);
}, 30_000);
