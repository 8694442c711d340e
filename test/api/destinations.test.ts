// Destination verification end to end under verify_destinations = all
// (Cloudflare Email Routing behaviour): an alias to an unverified address
// answers 450 and the verification mail goes out through the normal delivery
// path; confirming the link lets the next delivery through. Expired and
// tampered links are refused. test/api/confirmations.test.ts covers the
// default mode (tokens), replies and codes.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { signVerification } from "../../src/delivery/verification.ts";
import { VERIFY_SECRET_FILE } from "../../src/store/secrets.ts";
import { createToken } from "../../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { freePort } from "../support/ports.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { SmtpTalk } from "../support/smtp-client.ts";

let dns: DnsServer;
let mf: TestMailferry;
let sink: Sink;
let token: string;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({ "gmail.test": { MX: [{ priority: 10, exchange: "mx.gmail.test" }] }, "mx.gmail.test": { A: ["127.0.0.2"] } });
  // A public URL, as a server reachable from outside has: only then does the mail carry a link.
  const port = String(await freePort());
  mf = await startMailferry({
    dns,
    domains: ["example.test"],
    env: { MAILFERRY_VERIFY_DESTINATIONS: "true", MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_HTTP_PORT: port, MAILFERRY_HTTP_PUBLIC_URL: `http://127.0.0.1:${port}/` },
  });
  token = (await createToken(mf.appliance.store.db, "dest", "write")).token;
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
  await sink.close();
});

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${mf.httpUrl}api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json().catch(() => null)) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
};

/** One message to `rcpt` over SMTP: the RCPT reply, and the DATA reply when RCPT was accepted. */
async function send(rcpt: string): Promise<{ rcpt: string; data?: string }> {
  const { talk } = await SmtpTalk.connect(mf.smtpPort);
  try {
    await talk.send("EHLO client.test");
    await talk.send("MAIL FROM:<alice@sender.test>");
    const r = await talk.send(`RCPT TO:<${rcpt}>`);
    if (r.code !== 250) return { rcpt: `${r.code} ${r.text}` };
    await talk.send("DATA");
    const d = await talk.send(`From: alice@sender.test\r\nTo: ${rcpt}\r\nSubject: hi\r\nMessage-ID: <${crypto.randomUUID()}@sender.test>\r\n\r\nhello\r\n.`);
    return { rcpt: `${r.code}`, data: `${d.code}` };
  } finally {
    talk.close();
  }
}

const linkIn = (raw: Buffer) => /https?:\/\/\S+\/verify\/[A-Za-z0-9_.-]+/.exec(raw.toString().replace(/=\r?\n/g, ""))![0];
const destination = async (address: string) => (await api("GET", `/destinations/${address}`)).body.status as string;

test("unverified → 450 and a verification mail; GET alone does not verify; confirming → the next delivery arrives", async () => {
  const created = await api("POST", "/aliases", { domain: "example.test", name: "hello", recipients: ["me@gmail.test"] });
  expect(created.body.verification_sent).toEqual(["me@gmail.test"]);

  const [mail] = await sink.waitForMessages(1);
  expect(mail!.rcptTo).toEqual(["me@gmail.test"]);
  expect(mail!.mailFrom).toBe(""); // automatic mail: the null sender, nothing bounces back
  expect(mail!.raw.toString()).toContain("Subject: Confirm forwarding to me@gmail.test");
  const link = linkIn(mail!.raw);
  expect(link.startsWith(mf.httpUrl)).toBe(true);

  expect(await send("hello@example.test")).toEqual({ rcpt: "450 4.1.1 hello@example.test: forwarding destination me@gmail.test is not verified yet" });
  const logged = await api("GET", "/log?recipient=hello@example.test&verdict=deferred");
  expect(logged.body.items[0].text).toContain("not verified yet");

  // A mail scanner fetching the link must not confirm it.
  const page = await fetch(link);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('method="post"');
  expect(await destination("me@gmail.test")).toBe("pending");

  const confirmed = await fetch(link, { method: "POST" });
  expect(confirmed.status).toBe(200);
  expect(await confirmed.text()).toContain("Mail will now be forwarded to me@gmail.test");
  expect(await destination("me@gmail.test")).toBe("verified");

  expect(await send("hello@example.test")).toEqual({ rcpt: "250", data: "250" });
  const [, forwarded] = await sink.waitForMessages(2);
  expect(forwarded!.rcptTo).toEqual(["me@gmail.test"]);
  expect(forwarded!.raw.toString()).toContain("Subject: hi");
  const audit = await mf.appliance.store.db.selectFrom("audit_log").selectAll().where("action", "=", "destination.confirm").executeTakeFirstOrThrow();
  expect(audit.actor).toBe("destination:me@gmail.test");
  expect(JSON.parse(audit.after!)).toEqual({ confirmed_by: "link" });
});

test("verified destinations still receive while another of the alias is pending; the log names the pending one", async () => {
  // Counted before the alias is saved: new@'s verification mail leaves while the API answers, and may arrive first.
  const before = sink.messages.length;
  await api("POST", "/aliases", { domain: "example.test", name: "team", recipients: ["me@gmail.test", "new@gmail.test"] });
  expect(await send("team@example.test")).toEqual({ rcpt: "250", data: "250" });
  const arrived = await sink.waitForMessages(before + 2); // new@'s verification mail and the forwarded copy for me@
  const forwarded = arrived.slice(before).filter((m) => m.mailFrom !== "");
  expect(forwarded.map((m) => m.rcptTo)).toEqual([["me@gmail.test"]]);
  const event = (await api("GET", "/log?recipient=team@example.test&verdict=accepted")).body.items.find((e: { stage: string }) => e.stage === "rcpt");
  expect(event.detail.unverified).toEqual(["new@gmail.test"]);
});

test("tampered and expired links are refused and verify nothing", async () => {
  await api("POST", "/destinations", { address: "late@gmail.test" });
  const key = readFileSync(join(mf.dataDir, VERIFY_SECRET_FILE), "utf8").trim();
  const expired = signVerification("late@gmail.test", Date.now() - 1000, key);
  const valid = signVerification("late@gmail.test", Date.now() + 60_000, key);
  const tampered = valid.slice(0, -2) + (valid.endsWith("AA") ? "BB" : "AA");
  const forged = signVerification("late@gmail.test", Date.now() + 60_000, "not the key");
  for (const t of [expired, tampered, forged, "garbage"]) {
    for (const method of ["GET", "POST"]) {
      const res = await fetch(`${mf.httpUrl}verify/${t}`, { method });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain(t === expired ? "expired" : "not valid");
    }
  }
  expect(await destination("late@gmail.test")).toBe("pending");
  expect((await fetch(`${mf.httpUrl}verify/${valid}`, { method: "POST" })).status).toBe(200);
  expect(await destination("late@gmail.test")).toBe("verified");
});

test("with verification off (single-admin installs) mail goes straight through", async () => {
  await api("POST", "/aliases", { domain: "example.test", name: "direct", recipients: ["other@gmail.test"] });
  expect((await send("direct@example.test")).rcpt).toStartWith("450 4.1.1");
  mf.appliance.config.delivery.verifyDestinations = "off";
  try {
    expect(await send("direct@example.test")).toEqual({ rcpt: "250", data: "250" });
  } finally {
    mf.appliance.config.delivery.verifyDestinations = "all";
  }
});
