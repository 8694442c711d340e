// The first-run path at the HTTP level: the dashboard's "Getting started"
// steps follow what exists, and "Send a test message" sends a DKIM-signed
// message through the real router and relay to sinks the test DNS server
// routes to, showing each destination MX's reply (or why nothing was sent).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { dkimVerify } from "mailauth/lib/dkim/verify";
import { createResolver } from "../../src/dns/resolver.ts";
import { testAddress, testPlan } from "../../src/service/test-message.ts";
import type { AliasRule } from "../../src/aliases/rules.ts";
import { reply } from "../../src/mail/reply.ts";
import { createAdmin, createSession } from "../../src/store/admins.ts";
import { type DnsServer, publishZoneLines, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSinks } from "../support/sink.ts";

let dns: DnsServer;
let mf: TestMailferry;
let accepting: Sink;
let refusing: Sink;
let headers: Record<string, string>;

beforeAll(async () => {
  [accepting, refusing] = (await startSinks([{ host: "127.0.0.2" }, { host: "127.0.0.3", onRcpt: () => ({ code: 550, text: "5.1.1 no such mailbox here" }) }])) as [Sink, Sink];
  dns = await startDnsServer({
    "ok.test": { MX: [{ priority: 10, exchange: "mx.ok.test" }] },
    "mx.ok.test": { A: ["127.0.0.2"] },
    "refuse.test": { MX: [{ priority: 10, exchange: "mx.refuse.test" }] },
    "mx.refuse.test": { A: ["127.0.0.3"] },
  });
  mf = await startMailferry({ dns, env: { MAILFERRY_OUTBOUND_PORT: String(accepting.port) } });
  const admin = await createAdmin(mf.appliance.store.db, "admin", "correct horse battery staple");
  const session = await createSession(mf.appliance.store.db, admin.id, "127.0.0.1", "test");
  headers = { cookie: `mf_session=${session.token}`, "x-csrf-token": session.csrf };
}, 30_000);
afterAll(async () => {
  await mf?.stop();
  await dns?.close();
  await Promise.all([accepting?.close(), refusing?.close()]);
});

const at = (path: string) => `${mf.httpUrl}${path.replace(/^\//, "")}`;
const get = async (path: string) => (await fetch(at(path), { headers })).text();
const post = (path: string, body: Record<string, string>) => fetch(at(path), { method: "POST", body: new URLSearchParams(body), headers, redirect: "manual" });
const aliasId = async (pattern: string) => (await mf.appliance.store.db.selectFrom("aliases").select("id").where("pattern", "=", pattern).executeTakeFirstOrThrow()).id;
const sendTest = (pattern: string, address?: string) => aliasId(pattern).then((id) => post(`/aliases/${id}/test-message`, address === undefined ? {} : { address }));
/** The "Getting started" steps as [state, title], or null when the panel is not shown. */
async function steps(): Promise<[string, string][] | null> {
  const html = await get("/");
  const panel = html.match(/<section class="panel" id="getting-started">(.*?)<\/section>/s);
  if (!panel) return null;
  return [...panel[1]!.matchAll(/<li class="(\w+)">.*?<a[^>]*>([^<]+)<\/a>/gs)].map((m) => [m[1]!, m[2]!]);
}
/** Test messages a sink received since its `from`-th message (other mail, such as verification mails, left out). */
const testCopies = (sink: Sink, from: number) => sink.messages.slice(from).filter((m) => m.mailFrom === "mailferry-test@first.test");
/** The result rows of a test-message page: mark, destination, answer, answered by. */
const rows = (html: string) =>
  [...(html.match(/<section class="panel" id="test-report">(.*?)<\/section>/s)?.[1] ?? "").matchAll(/<tr>(.*?)<\/tr>/gs)]
    .slice(1)
    .map((r) => [...r[1]!.matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((c) => c[1]!.replace(/<[^>]+>/g, "").replaceAll("&#39;", "'").trim()));

describe("the first-run path", () => {
  test("right after set-up the dashboard says: add a domain", async () => {
    expect(await steps()).toEqual([
      ["done", "Create the first admin"],
      ["next", "Add a domain"],
      ["later", "Publish its DNS records"],
      ["later", "Add an alias"],
      ["later", "Send a test message"],
    ]);
  });

  test("after adding a domain: its page points to the alias step; the dashboard's next step is DNS", async () => {
    expect((await post("/domains", { name: "first.test" })).headers.get("location")).toStartWith("/domains/first.test?ok=");
    expect(await get("/domains/first.test")).toMatch(/<p id="next-step">Next: publish the records below at your DNS provider, then <a class="button small" href="\/aliases\?domain=first.test">add an alias on first.test<\/a>/);
    expect((await steps())!.map(([state]) => state)).toEqual(["done", "done", "next", "later", "later"]);
  });

  test("an alias created with htmx links to its test message; the alias's row has the button", async () => {
    const res = await fetch(at("/aliases"), { method: "POST", body: new URLSearchParams({ domain: "first.test", name: "hello", recipients: "you@ok.test" }), headers: { ...headers, "hx-request": "true" } });
    const id = await aliasId("hello");
    expect(await res.text()).toContain(`Next: <a href="/aliases/${id}/test-message">send a test message</a>`);
    expect(await get("/aliases?domain=first.test")).toContain(`<form class="inline" method="post" action="/aliases/${id}/test-message">`);
    expect((await steps())!.map(([state]) => state)).toEqual(["done", "done", "next", "done", "later"]);
  });

  test("send a test message: the destination MX's 250 is shown, and the message arrived DKIM-signed by the alias's domain", async () => {
    // The domain's DKIM record as the domain page's zone download gives it, published in DNS.
    publishZoneLines(dns.zones, await get("/domains/first.test/zone"));
    const before = accepting.messages.length;
    const res = await sendTest("hello");
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("Test message for hello@first.test");
    expect(html).toContain("DKIM-signed by first.test");
    expect(rows(html)).toEqual([["✓", "you@ok.test", "250 2.0.0 sink accepted", "mx.ok.test (TLSv1.3)"]]);

    // The sink stores a message before it answers 250: it is there when the page is.
    const [message] = testCopies(accepting, before);
    expect(message!.rcptTo).toEqual(["you@ok.test"]);
    const raw = message!.raw.toString();
    expect(raw).toMatch(/^DKIM-Signature: /);
    expect(raw).toContain("From: mailferry test <mailferry-test@first.test>");
    expect(raw).toContain("To: hello@first.test");
    expect(raw).toContain("This is a test message from the mailferry admin UI");
    const resolver = createResolver({ servers: [{ host: dns.host, port: dns.port }], timeout: 1000 });
    const verified = await dkimVerify(message!.raw, { resolver: resolver.forMailauth });
    expect(verified.results.map((r) => [r.signingDomain, r.status?.result])).toEqual([["first.test", "pass"]]);
  });

  test("the mail log and the audit log record it; the dashboard marks the test done", async () => {
    const event = await mf.appliance.store.db.selectFrom("events").selectAll().where("stage", "=", "delivery").where("recipients", "=", '["you@ok.test"]').executeTakeFirstOrThrow();
    expect(event).toMatchObject({ code: 250, mail_from: "mailferry-test@first.test", domain: "first.test", subject: "Test message for hello@first.test" });
    expect(JSON.parse(event.detail!)).toMatchObject({ test_message: true, by: "admin:admin", mx: "mx.ok.test", original_recipient: "hello@first.test" });
    const audit = await mf.appliance.store.db.selectFrom("audit_log").selectAll().where("action", "=", "alias.test_message").executeTakeFirstOrThrow();
    expect(audit.actor).toBe("admin:admin");
    expect(JSON.parse(audit.after!)).toMatchObject({ delivered: 1, outcomes: [{ target: "you@ok.test", reply: "250 2.0.0 sink accepted", mx: "mx.ok.test" }] });
    expect((await steps())!.map(([state]) => state)).toEqual(["done", "done", "next", "done", "done"]);
  });

  test("a destination that answers 550: its text is shown next to the one that accepted", async () => {
    expect((await post("/aliases", { domain: "first.test", name: "team", recipients: "a@ok.test\nb@refuse.test" })).status).toBe(302);
    const html = await (await sendTest("team")).text();
    expect(rows(html).sort()).toEqual([
      ["✓", "a@ok.test", "250 2.0.0 sink accepted", "mx.ok.test (TLSv1.3)"],
      ["✗", "b@refuse.test", "550 5.1.1 no such mailbox here", "mx.refuse.test (TLSv1.3)"],
    ]);
    expect(testCopies(refusing, 0)).toEqual([]);
  });

  test("no destination MX (DNS says the domain does not exist): mailferry's own reason", async () => {
    expect((await post("/aliases", { domain: "first.test", name: "lost", recipients: "x@nowhere.test" })).status).toBe(302);
    expect(rows(await (await sendTest("lost")).text())).toEqual([["✗", "x@nowhere.test", "550 5.1.2 domain nowhere.test does not exist", "no mail host answered: mailferry's own reason"]]);
  });

  test("a disabled alias is not sent to, and the page says why", async () => {
    expect((await post("/aliases", { domain: "first.test", name: "quiet", recipients: "q@ok.test", disabled: "drop" })).status).toBe(302);
    const html = await (await sendTest("quiet")).text();
    expect(html).toContain("Not sent: the alias is disabled: mailferry accepts mail for it and discards it.");
    expect(rows(html)).toEqual([]);
  });

  test("a catch-all alias asks for an address on its domain, then sends to it", async () => {
    expect((await post("/aliases", { domain: "first.test", name: "*", recipients: "all@ok.test" })).status).toBe(302);
    const id = await aliasId("*");
    expect(await get(`/aliases/${id}/test-message`)).toContain('name="address"');
    const missing = await sendTest("*", "");
    expect(missing.status).toBe(422);
    expect(await missing.text()).toContain("enter an address that * matches, e.g. someone@first.test");
    expect(await (await sendTest("*", "x@elsewhere.test")).text()).toContain("the address must be on first.test");
    // An address an exact alias takes is not this alias's to test.
    expect(await (await sendTest("*", "hello@first.test")).text()).toContain("Not sent: this address is routed by the alias hello on first.test, not by *.");
    const before = accepting.messages.length;
    expect(rows(await (await sendTest("*", "anyone@first.test")).text())).toEqual([["✓", "all@ok.test", "250 2.0.0 sink accepted", "mx.ok.test (TLSv1.3)"]]);
    expect(testCopies(accepting, before).map((m) => m.rcptTo)).toEqual([["all@ok.test"]]);
  });

  test("once the DNS records and this server's address and PTR are published, every step is done and the panel goes away for good", async () => {
    Object.assign((dns.zones[TEST_HOSTNAME] ??= {}), { A: ["127.0.0.1"] });
    dns.zones["1.0.0.127.in-addr.arpa"] = { PTR: [TEST_HOSTNAME] };
    expect(await steps()).toBeNull();
    // Remembered: a later DNS problem does not bring the first-day panel back.
    delete dns.zones[TEST_HOSTNAME];
    expect(await steps()).toBeNull();
  });
});

describe("what a test message would do, decided from the routing verdict", () => {
  const alias: AliasRule = { id: 7, domain: "d.test", subdomain: "", matcher: "exact", pattern: "hello", global: false, recipients: [], disabled: null, description: "" };
  const ref = { id: 7, domain: "d.test", label: "hello" };

  test("an exact alias is tested at its own address; others at an address on their domain", () => {
    expect(testAddress(alias, "ignored@x.test")).toBe("hello@d.test");
    expect(testAddress({ ...alias, matcher: "regex", pattern: "^(.+)$", subdomain: "team" }, " bob@team.d.test ")).toBe("bob@team.d.test");
    expect(() => testAddress({ ...alias, matcher: "regex", pattern: "^(.+)$", subdomain: "team" }, "bob@d.test")).toThrow("the address must be on team.d.test");
  });

  test("webhooks and unverified destinations are listed with why nothing was sent there", () => {
    const plan = testPlan(
      {
        action: "deliver",
        alias: ref,
        targets: [
          { kind: "address", address: "a@x.test", domain: "x.test", port: null, alias: ref },
          { kind: "webhook", url: "https://hooks.example/in", alias: ref },
        ],
        unverified: ["new@y.test"],
      },
      alias,
    );
    expect(plan.send.map((t) => t.address)).toEqual(["a@x.test"]);
    expect(plan.skipped).toEqual([
      { target: "https://hooks.example/in", kind: "skipped", reason: "webhook: not called for a test; real mail to this alias is POSTed there as JSON" },
      { target: "new@y.test", kind: "skipped", reason: "not verified yet: mail is forwarded there once its owner confirms (see Destinations)" },
    ]);
    expect(plan.refused).toBeNull();
  });

  test("a refusal is mailferry's own answer to senders", () => {
    const plan = testPlan({ action: "refuse", reply: reply(450, "4.1.1", "hello@d.test: forwarding destination a@x.test is not verified yet"), reason: "unverified_destination", alias: ref }, alias);
    expect(plan).toEqual({ send: [], skipped: [], refused: "mailferry answers senders 450 4.1.1 hello@d.test: forwarding destination a@x.test is not verified yet" });
  });
});
