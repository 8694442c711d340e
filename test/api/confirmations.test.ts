// Forwarding destinations under the default verify_destinations = tokens
// (docs/aliases.md, "Destinations"): what an admin adds forwards at once, even
// destinations built at delivery time; what a write-scope token adds waits for
// its owner, who confirms by replying to the verification mail (it reaches our
// own MX) or with its code, entered by an admin. No public URL is needed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { createAdmin, createSession } from "../../src/store/admins.ts";
import { createToken } from "../../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, type SinkMessage, startSink } from "../support/sink.ts";
import { SmtpTalk } from "../support/smtp-client.ts";

let dns: DnsServer;
let mf: TestMailferry;
let sink: Sink;
let writeToken: string;
let adminToken: string;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({ "gmail.test": { MX: [{ priority: 10, exchange: "mx.gmail.test" }] }, "mx.gmail.test": { A: ["127.0.0.2"] } });
  // The default mode, as `npm start` and install.sh run it (the harness turns verification off unless told).
  mf = await startMailferry({ dns, domains: ["d.test"], env: { MAILFERRY_VERIFY_DESTINATIONS: "tokens", MAILFERRY_OUTBOUND_PORT: String(sink.port) } });
  writeToken = (await createToken(mf.appliance.store.db, "app", "write")).token;
  adminToken = (await createToken(mf.appliance.store.db, "ops", "admin")).token;
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
  await sink.close();
});

const api = async (token: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${mf.httpUrl}api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json().catch(() => null)) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
};

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "../../src/main.ts"), ...args], {
    env: { ...process.env, MAILFERRY_DATA_DIR: mf.dataDir, MAILFERRY_HOSTNAME: TEST_HOSTNAME, MAILFERRY_VERIFY_DESTINATIONS: "tokens" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, out: out + err };
}

/** One message over SMTP from `from` to `rcpt`: the RCPT reply, and the DATA reply when RCPT was accepted. */
async function send(rcpt: string, from = "alice@sender.test"): Promise<{ rcpt: string; data?: string }> {
  const { talk } = await SmtpTalk.connect(mf.smtpPort);
  try {
    await talk.send("EHLO client.test");
    await talk.send(`MAIL FROM:<${from}>`);
    const r = await talk.send(`RCPT TO:<${rcpt}>`);
    if (r.code !== 250) return { rcpt: `${r.code} ${r.text}` };
    await talk.send("DATA");
    const d = await talk.send(`From: ${from}\r\nTo: ${rcpt}\r\nSubject: hi\r\nMessage-ID: <${crypto.randomUUID()}@sender.test>\r\n\r\nhello\r\n.`);
    return { rcpt: `${r.code} ${r.text}`, data: `${d.code}` };
  } finally {
    talk.close();
  }
}

async function nextMessage(match: (m: SinkMessage) => boolean): Promise<SinkMessage> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = sink.messages.find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no such message at the sink among ${sink.messages.length}`);
    await Bun.sleep(50);
  }
}

const verificationFor = (address: string) => nextMessage((m) => m.mailFrom === "" && m.rcptTo[0] === address && m.raw.toString().includes("Subject: Confirm forwarding"));
const header = (raw: Buffer, name: string) => new RegExp(`^${name}: (.*)$`, "mi").exec(raw.toString())?.[1]?.trim();

test("an admin's regex alias with a $1 template forwards the first message at once, no 4xx", async () => {
  const added = await cli("alias", "add", "d.test", "/^(.+)$/", "$1@gmail.test");
  expect(added).toMatchObject({ code: 0 });
  expect(added.out).not.toContain("waiting");
  expect(await send("bob@d.test", "new-sender@elsewhere.test")).toEqual({ rcpt: "250 Accepted", data: "250" });
  const copy = await nextMessage((m) => m.rcptTo[0] === "bob@gmail.test");
  expect(copy.raw.toString()).toContain("Subject: hi");
});

test("an admin's plain destination is confirmed by that act, recorded in the audit log", async () => {
  const created = await api(adminToken, "POST", "/aliases", { domain: "d.test", name: "team", recipients: ["lead@gmail.test"] });
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({ verification_sent: [], waiting_confirmation: [] });
  const destination = await api(adminToken, "GET", "/destinations/lead@gmail.test");
  expect(destination.body.status).toBe("verified");
  const audit = await mf.appliance.store.db.selectFrom("audit_log").selectAll().where("action", "=", "destination.confirm").where("target", "=", "lead@gmail.test").executeTakeFirstOrThrow();
  expect(audit.actor).toBe("token:ops");
  expect(await send("team@d.test")).toEqual({ rcpt: "250 Accepted", data: "250" });
});

test("a write-scope token's new outside destination is held until its owner replies to the verification mail", async () => {
  const created = await api(writeToken, "POST", "/aliases", { domain: "d.test", name: "app", recipients: ["owner@gmail.test"] });
  expect(created.status).toBe(201);
  expect(created.body.verification_sent).toEqual(["owner@gmail.test"]);
  expect(created.body.waiting_confirmation).toEqual([{ target: "owner@gmail.test", why: expect.stringContaining("added by token:app, a token without admin scope") }]);
  expect((await send("app@d.test")).rcpt).toBe("450 4.1.1 app@d.test: forwarding destination owner@gmail.test is not verified yet");

  const mail = await verificationFor("owner@gmail.test");
  const replyTo = header(mail.raw, "Reply-To")!;
  expect(replyTo).toMatch(new RegExp(`^confirm-\\d+-[a-z2-7]{16}@${TEST_HOSTNAME.replaceAll(".", "\\.")}$`));
  // The admin port is on loopback: no link nobody outside could open, a reply and a code instead.
  expect(mail.raw.toString()).not.toContain("/verify/");
  expect(mail.raw.toString()).toMatch(/reply to this message/);

  // A forged code confirms nothing.
  expect((await send(replyTo.replace(/-([a-z2-7]{16})@/, "-aaaaaaaaaaaaaaaa@"), "owner@gmail.test")).rcpt).toStartWith("550");
  expect((await api(writeToken, "GET", "/destinations/owner@gmail.test")).body.status).toBe("pending");

  const reply = await send(replyTo, "owner@gmail.test");
  expect(reply).toEqual({ rcpt: "250 Accepted", data: "250" });
  expect((await api(writeToken, "GET", "/destinations/owner@gmail.test")).body.status).toBe("verified");
  const row = await mf.appliance.store.db.selectFrom("destinations").selectAll().where("address", "=", "owner@gmail.test").executeTakeFirstOrThrow();
  expect(row.confirmed_by).toBe("reply");

  expect(await send("app@d.test")).toEqual({ rcpt: "250 Accepted", data: "250" });
  await nextMessage((m) => m.rcptTo[0] === "owner@gmail.test" && m.mailFrom !== "");
});

test("a write-scope token cannot forward to addresses built at delivery time or to a whole outside domain", async () => {
  for (const recipients of [["$1@gmail.test"], ["gmail.test"]]) {
    const refused = await api(writeToken, "POST", "/aliases", { domain: "d.test", name: "/^x-(.+)$/", recipients });
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({ field: "recipients", message: expect.stringContaining("can never be confirmed by their owners") });
  }
  // Templates on the managed domains stay allowed: aliases, not owners, decide there.
  expect((await api(writeToken, "POST", "/aliases", { domain: "d.test", name: "/^y-(.+)$/", recipients: ["$1@d.test"] })).status).toBe(201);
  const imported = await api(writeToken, "POST", "/aliases/import", { domain: "d.test", text: "forward-email=/^z-(.+)$/:$1@gmail.test", apply: true });
  expect(imported.status).toBe(422);
  expect((await api(adminToken, "POST", "/aliases", { domain: "d.test", name: "/^x-(.+)$/", recipients: ["$1@gmail.test"] })).status).toBe(201);
});

test("a write-scope token's edit of an admin's alias holds the new destination too", async () => {
  const { body } = await api(adminToken, "POST", "/aliases", { domain: "d.test", name: "shared", recipients: ["first@gmail.test"] });
  const patched = await api(writeToken, "PATCH", `/aliases/${body.alias.id}`, { recipients: ["first@gmail.test", "second@gmail.test"] });
  expect(patched.body.waiting_confirmation.map((w: { target: string }) => w.target)).toEqual(["second@gmail.test"]);
  const before = sink.messages.length;
  expect(await send("shared@d.test")).toEqual({ rcpt: "250 Accepted", data: "250" });
  await nextMessage((m) => m.rcptTo[0] === "first@gmail.test" && sink.messages.indexOf(m) >= before);
  expect(sink.messages.slice(before).some((m) => m.rcptTo[0] === "second@gmail.test" && m.mailFrom !== "")).toBe(false);
});

test("the code of a verification mail, entered by an admin on the Destinations page, confirms", async () => {
  await api(writeToken, "POST", "/aliases", { domain: "d.test", name: "coded", recipients: ["coded@gmail.test"] });
  const mail = await verificationFor("coded@gmail.test");
  const code = /code to the forwarder's admin: ([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3})/.exec(mail.raw.toString())![1]!;
  const admin = await createAdmin(mf.appliance.store.db, "admin", "correct horse battery staple");
  const session = await createSession(mf.appliance.store.db, admin.id, "127.0.0.1", "test");
  const post = (body: Record<string, string>) =>
    fetch(`${mf.httpUrl}destinations/confirm`, { method: "POST", body: new URLSearchParams({ _csrf: session.csrf, ...body }), headers: { cookie: `mf_session=${session.token}` }, redirect: "manual" });
  const wrong = await post({ code: "AAAA-AAAA-AAAA-AAAA" });
  expect(wrong.status).toBe(422);
  expect(await wrong.text()).toContain("no pending destination has this code");
  expect((await post({ code: code.toLowerCase().replaceAll("-", " ") })).status).toBe(302);
  const row = await mf.appliance.store.db.selectFrom("destinations").selectAll().where("address", "=", "coded@gmail.test").executeTakeFirstOrThrow();
  expect(row.confirmed_by).toBe("code");
  expect(await send("coded@d.test")).toEqual({ rcpt: "250 Accepted", data: "250" });
});

test("the admin UI says which targets of a new alias wait and why (under verify_destinations = all)", async () => {
  const admin = await createAdmin(mf.appliance.store.db, "uiadmin", "correct horse battery staple");
  const session = await createSession(mf.appliance.store.db, admin.id, "127.0.0.1", "test");
  mf.appliance.config.delivery.verifyDestinations = "all";
  try {
    const res = await fetch(`${mf.httpUrl}aliases`, {
      method: "POST",
      body: new URLSearchParams({ _csrf: session.csrf, domain: "d.test", name: "ui", recipients: "ui-owner@gmail.test" }),
      headers: { cookie: `mf_session=${session.token}`, "hx-request": "true" },
    });
    const html = await res.text();
    expect(html).toContain("Created ui@d.test.");
    expect(html).toContain("No mail to ui-owner@gmail.test yet (verify_destinations = all: its owner confirms by replying to the verification mail");
  } finally {
    mf.appliance.config.delivery.verifyDestinations = "tokens";
  }
});

test("verify_destinations keeps the booleans of earlier releases: true is all, false is off", async () => {
  const { loadConfig } = await import("../../src/config/index.ts");
  const mode = (value: string) => loadConfig({ env: { MAILFERRY_VERIFY_DESTINATIONS: value, MAILFERRY_DATA_DIR: mf.dataDir } }).delivery.verifyDestinations;
  expect([mode("true"), mode("false"), mode("all"), mode("tokens"), mode("off"), mode("TOKENS")]).toEqual(["all", "off", "all", "tokens", "off", "tokens"]);
  expect(() => mode("sometimes")).toThrow("must be one of: all, tokens, off");
});
