// The learning catch-all (docs/aliases.md, "Learning catch-all") over real
// SMTP: names a catch-all accepts get spam from a client listed on a DNSBL zone
// of the test DNS server, or from a sender failing SPF, and good mail from a
// clean client; a name with only spam is suggested after the threshold, or
// with catchall.learn = apply refused with 550 5.1.1; the admin allows it
// again through the API (accepted, never suggested again) or refuses one on
// the Catch-all page (htmx).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { messageVerdict, nextState } from "../../src/policy/catchall.ts";
import { reverseName } from "../../src/dns/resolver.ts";
import { createAdmin, createSession } from "../../src/store/admins.ts";
import { createToken } from "../../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { SmtpTalk } from "../support/smtp-client.ts";

const LISTED = "127.0.0.30";
const CLEAN = "127.0.0.1";
const THRESHOLD = 3;

let dns: DnsServer;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({
    "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
    "mx.dest.test": { A: ["127.0.0.2"] },
    // RFC 5782 §2.1: the blocklist answers 127.0.0.2 for a listed address.
    [`${reverseName(LISTED).replace(".in-addr.arpa", "")}.dnsbl.test`]: { A: ["127.0.0.2"] },
    // No host may send for forged.test: its mail fails SPF (and carries no DKIM signature).
    "forged.test": { TXT: ["v=spf1 -all"] },
  });
});
afterAll(async () => {
  await dns.close();
  await sink.close();
});

/** A mailferry for the tests of one describe block, with a write-scope API token. */
function instanceFor(learn: "suggest" | "apply") {
  const ctx = {} as { mf: TestMailferry; token: string };
  beforeAll(async () => {
    ctx.mf = await startMailferry({
      dns,
      domains: ["example.test"],
      aliases: { "example.test": "forward-email=hello:user@dest.test,user@dest.test" },
      env: { MAILFERRY_OUTBOUND_PORT: String(sink.port), MAILFERRY_CATCHALL_LEARN: learn, MAILFERRY_CATCHALL_THRESHOLD: String(THRESHOLD), MAILFERRY_CATCHALL_DNSBL_ZONES: "dnsbl.test" },
    });
    ctx.token = (await createToken(ctx.mf.appliance.store.db, "test", "write")).token;
  });
  afterAll(() => ctx.mf.stop());
  return ctx;
}

/** The reply to RCPT TO, or (when accepted) to the message: `from` is the client address, `sender` the envelope and From. */
async function send(mf: TestMailferry, to: string, { from = CLEAN, sender = "someone@sender.test" } = {}): Promise<string> {
  const { talk } = await SmtpTalk.connect(mf.smtpPort, "127.0.0.1", from);
  try {
    await talk.send("EHLO client.test");
    await talk.send(`MAIL FROM:<${sender}>`);
    let r = await talk.send(`RCPT TO:<${to}>`);
    if (r.code < 400) {
      await talk.send("DATA");
      r = await talk.send(`From: ${sender}\r\nTo: ${to}\r\nSubject: hello\r\nMessage-ID: <${crypto.randomUUID()}@sender.test>\r\n\r\nHello.\r\n.`);
    }
    await talk.send("QUIT").catch(() => null);
    return `${r.code} ${r.text}`;
  } finally {
    talk.close();
  }
}

const spamFromListed = (mf: TestMailferry, to: string) => send(mf, to, { from: LISTED });

async function api(mf: TestMailferry, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${mf.httpUrl}api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as any };
}

const names = async (mf: TestMailferry, token: string) => Object.fromEntries(((await api(mf, token, "GET", "/catch-all")).body.items as { address: string; state: string; spam: number; good: number }[]).map((i) => [i.address, i]));

describe("the decision", () => {
  test("spam by rspamd, a DNSBL listing or failed authentication; good only when accepted and clean", () => {
    const pass = { spf: "pass", dkim: "none", dmarc: "none" };
    expect(messageVerdict({ reason: "delivered", code: 250, auth: pass, dnsblListed: [] })).toEqual({ verdict: "good", why: [] });
    expect(messageVerdict({ reason: "delivered", code: 250, auth: pass, dnsblListed: ["dnsbl.test"] }).verdict).toBe("spam");
    expect(messageVerdict({ reason: "delivered", code: 250, auth: pass, scanAction: "add header", dnsblListed: [] }).why).toEqual(["rspamd add header"]);
    expect(messageVerdict({ reason: "spam", code: 554, dnsblListed: [] }).verdict).toBe("spam");
    expect(messageVerdict({ reason: "delivered", code: 250, auth: { ...pass, dmarc: "fail" }, dnsblListed: [] }).why).toEqual(["DMARC fail"]);
    expect(messageVerdict({ reason: "delivered", code: 250, auth: { spf: "fail", dkim: "none", dmarc: "none" }, dnsblListed: [] }).verdict).toBe("spam");
    // A DKIM signature that passes makes an SPF failure a forwarding artefact, not a forgery.
    expect(messageVerdict({ reason: "delivered", code: 250, auth: { spf: "fail", dkim: "fail,pass", dmarc: "none" }, dnsblListed: [] }).verdict).toBe("good");
    // Deferred, or refused for reasons that say nothing about spam: not counted.
    expect(messageVerdict({ reason: "greylisted", code: 450, dnsblListed: [] }).verdict).toBeNull();
    expect(messageVerdict({ reason: "oversize", code: 552, dnsblListed: [] }).verdict).toBeNull();
  });

  test("the threshold with no good mail suggests (or with apply refuses); good mail and the admin's word stand", () => {
    expect(nextState({ spam: 2, good: 0, state: "learning" }, "suggest", 3)).toBe("learning");
    expect(nextState({ spam: 3, good: 0, state: "learning" }, "suggest", 3)).toBe("suggested");
    expect(nextState({ spam: 3, good: 0, state: "learning" }, "apply", 3)).toBe("refused");
    expect(nextState({ spam: 3, good: 0, state: "suggested" }, "apply", 3)).toBe("refused");
    expect(nextState({ spam: 30, good: 1, state: "learning" }, "apply", 3)).toBe("learning");
    expect(nextState({ spam: 4, good: 1, state: "suggested" }, "suggest", 3)).toBe("learning");
    expect(nextState({ spam: 30, good: 0, state: "allowed" }, "apply", 3)).toBe("allowed");
    expect(nextState({ spam: 30, good: 0, state: "learning" }, "off", 3)).toBe("learning");
  });
});

describe("learn = suggest", () => {
  const ctx = instanceFor("suggest");

  test("a name getting only spam (DNSBL, failed SPF) is suggested at the threshold; a name with good mail never is", async () => {
    const { mf, token } = ctx;
    for (let i = 0; i < THRESHOLD - 1; i++) expect(await spamFromListed(mf, "junk@example.test")).toStartWith("250");
    expect(await names(mf, token)).toEqual({});
    expect(await spamFromListed(mf, "junk+tag@example.test")).toStartWith("250");
    for (let i = 0; i < THRESHOLD; i++) expect(await send(mf, "forged@example.test", { sender: "anyone@forged.test" })).toStartWith("550 5.7.23");
    expect(await send(mf, "mixed@example.test")).toStartWith("250");
    for (let i = 0; i < THRESHOLD + 1; i++) expect(await spamFromListed(mf, "mixed@example.test")).toStartWith("250");
    // An exact alias is not the catch-all's to learn.
    for (let i = 0; i < THRESHOLD; i++) expect(await spamFromListed(mf, "hello@example.test")).toStartWith("250");

    const listed = await names(mf, token);
    expect(Object.keys(listed).sort()).toEqual(["forged@example.test", "junk@example.test"]);
    expect(listed["junk@example.test"]).toMatchObject({ state: "suggested", spam: THRESHOLD, good: 0 });
    expect(listed["forged@example.test"]).toMatchObject({ state: "suggested", spam: THRESHOLD });
    expect(mf.logs.filter((l) => l.event === "catchall.suggested").map((l) => l.name)).toEqual(["junk", "forged"]);
    // Suggested is not refused: the name still gets its mail until the admin says so.
    expect(await spamFromListed(mf, "junk@example.test")).toStartWith("250");
    // The verdict is in the message's mail-log row, for its story.
    const row = await mf.appliance.store.db.selectFrom("events").select("detail").where("stage", "=", "data").where("recipients", "=", JSON.stringify(["junk+tag@example.test"])).executeTakeFirstOrThrow();
    expect(JSON.parse(row.detail!).catchall).toEqual({ verdict: "spam", why: ["listed on dnsbl.test"] });
  }, 60_000);

  test("the Catch-all page lists the suggested name with its action; one click (htmx) refuses it: 550 5.1.1, audited", async () => {
    const { mf, token } = ctx;
    const db = mf.appliance.store.db;
    const session = await createSession(db, (await createAdmin(db, "admin", "correct horse battery staple")).id, "127.0.0.1", "test");
    const cookie = `mf_session=${session.token}`;
    expect((await fetch(`${mf.httpUrl}catch-all`, { redirect: "manual" })).status).toBe(302);
    const page = await (await fetch(`${mf.httpUrl}catch-all`, { headers: { cookie } })).text();
    const rowId = `catchall-${Buffer.from("junk@example.test").toString("hex")}`;
    const row = new RegExp(`<tr id="${rowId}">([\\s\\S]*?)</tr>`).exec(page)?.[1];
    expect(row).toContain("junk@example.test");
    expect(row).toContain("suggested");
    expect(row).toContain('hx-post="/catch-all/refuse"');
    expect(row).toContain("Refuse this name");

    const res = await fetch(`${mf.httpUrl}catch-all/refuse`, { method: "POST", body: new URLSearchParams({ address: "junk@example.test" }), headers: { cookie, "hx-request": "true", "x-csrf-token": session.csrf } });
    expect(res.status).toBe(200);
    const swapped = await res.text();
    expect(swapped).toStartWith(`<tr id="${rowId}">`);
    expect(swapped).toContain("refused (550)");
    expect(swapped).toContain("Allow again");
    expect(await send(mf, "junk@example.test")).toStartWith("550 5.1.1");
    expect(await send(mf, "junk+other@example.test")).toStartWith("550 5.1.1");
    expect(await send(mf, "another@example.test")).toStartWith("250");
    const refused = await db.selectFrom("events").select(["reason", "code"]).where("stage", "=", "rcpt").where("reason", "=", "catchall_refused").execute();
    expect(refused.length).toBe(2);
    const audit = await db.selectFrom("audit_log").select(["actor", "action", "target"]).where("action", "like", "catchall.%").execute();
    expect(audit).toEqual([{ actor: "admin:admin", action: "catchall.refuse", target: "junk@example.test" }]);
    expect((await names(mf, token))["junk@example.test"]).toMatchObject({ state: "refused", decided_by: "admin:admin" });
  }, 30_000);

  test("bad input gets a clear error: not an address (422), a domain not managed here (404), an unknown state (400)", async () => {
    const { mf, token } = ctx;
    expect(await api(mf, token, "PUT", "/catch-all/nonsense", { state: "refused" })).toMatchObject({ status: 422, body: { error: { field: "address" } } });
    expect(await api(mf, token, "PUT", "/catch-all/junk@elsewhere.test", { state: "refused" })).toMatchObject({ status: 404 });
    expect((await api(mf, token, "PUT", "/catch-all/junk@example.test", { state: "maybe" })).status).toBe(400);
  });
});

describe("learn = apply", () => {
  const ctx = instanceFor("apply");

  test("at the threshold the name is refused at RCPT with 550 5.1.1 and its own reason, logged", async () => {
    const { mf, token } = ctx;
    for (let i = 0; i < THRESHOLD; i++) expect(await spamFromListed(mf, "spam@example.test")).toStartWith("250");
    expect(await send(mf, "spam@example.test")).toStartWith("550 5.1.1");
    expect(await send(mf, "clean@example.test")).toStartWith("250");
    expect(mf.logs.find((l) => l.event === "catchall.refused")).toMatchObject({ domain: "example.test", name: "spam", spam: THRESHOLD, why: ["listed on dnsbl.test"] });
    const event = await mf.appliance.store.db.selectFrom("events").select(["code", "enhanced", "detail"]).where("reason", "=", "catchall_refused").executeTakeFirstOrThrow();
    expect(event).toMatchObject({ code: 550, enhanced: "5.1.1" });
    expect(JSON.parse(event.detail!).catchall).toEqual({ refused_by: "auto" });
    expect((await names(mf, token))["spam@example.test"]).toMatchObject({ state: "refused", decided_by: "auto" });
    // The story of the refused message says why, and offers to allow the name again.
    const refusedId = (await mf.appliance.store.db.selectFrom("events").select("id").where("reason", "=", "catchall_refused").executeTakeFirstOrThrow()).id;
    const story = (await api(mf, token, "GET", `/log/${refusedId}/story`)).body;
    expect(JSON.stringify(story)).toContain("a catch-all name that received only spam");
    expect(JSON.stringify(story)).toContain('"path":"/catch-all/allow"');
    const spamId = (await mf.appliance.store.db.selectFrom("events").select("id").where("stage", "=", "data").where("recipients", "=", JSON.stringify(["spam@example.test"])).executeTakeFirstOrThrow()).id;
    expect(JSON.stringify((await api(mf, token, "GET", `/log/${spamId}/story`)).body)).toContain("Learning catch-all: counted as spam (listed on dnsbl.test)");
  }, 30_000);

  test("allowed again through the API, the name is accepted and never suggested or refused again", async () => {
    const { mf, token } = ctx;
    const allowed = await api(mf, token, "PUT", `/catch-all/${encodeURIComponent("spam@example.test")}`, { state: "allowed" });
    expect(allowed).toMatchObject({ status: 200, body: { address: "spam@example.test", state: "allowed", decided_by: "token:test" } });
    for (let i = 0; i < THRESHOLD + 1; i++) expect(await spamFromListed(mf, "spam@example.test")).toStartWith("250");
    expect((await names(mf, token))["spam@example.test"]).toMatchObject({ state: "allowed", spam: 2 * THRESHOLD + 1 });
    expect(mf.logs.filter((l) => l.event === "catchall.refused").length).toBe(1);
  }, 30_000);
});
