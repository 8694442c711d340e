// The admin UI at the HTTP level: every state-changing route refuses
// unauthenticated and CSRF-less requests; hostile input is escaped or refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createAdmin, createSession } from "../../src/store/admins.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { signedInAdmin, startMailferry, type TestMailferry } from "../support/mailferry.ts";

let dns: DnsServer;
let mf: TestMailferry;
let cookie: string;
let csrf: string;
let aliasId: number;

beforeAll(async () => {
  dns = await startDnsServer({});
  mf = await startMailferry({ dns, domains: ["example.test"], aliases: { "example.test": "forward-email=hello:a@x.test" } });
  ({ cookie, csrf } = await signedInAdmin(mf.appliance.store.db));
  aliasId = (await mf.appliance.store.db.selectFrom("aliases").select("id").executeTakeFirstOrThrow()).id;
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
});

const at = (path: string) => `${mf.httpUrl}${path.replace(/^\//, "")}`;
const post = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(at(path), { method: "POST", body: new URLSearchParams(body), headers, redirect: "manual" });

/**
 * Every POST route of the UI, with its parameters filled in. Set-up, login and
 * verification links carry their own credential; the API its bearer token
 * (test/api covers it).
 */
function postRoutes(): string[] {
  const paths = mf.appliance.web.routes.filter((r) => r.method === "POST").map((r) => r.path);
  return [...new Set(paths)]
    .filter((p) => p !== "/setup" && p !== "/login" && !p.startsWith("/verify/") && !p.startsWith("/api/"))
    .map((p) => p.replace(":name", "example.test").replace(":id", String(aliasId)));
}

describe("state-changing routes", () => {
  test("there are many, and each refuses a request without a session (401)", async () => {
    const routes = postRoutes();
    expect(routes.length).toBeGreaterThan(20);
    for (const path of routes) {
      const res = await post(path, { _csrf: csrf });
      expect(`${path} ${res.status}`).toBe(`${path} 401`);
    }
  });

  test("each refuses a missing or wrong CSRF token (403), with a valid session", async () => {
    for (const path of postRoutes()) {
      expect(`${path} ${(await post(path, {}, { cookie })).status}`).toBe(`${path} 403`);
      expect(`${path} ${(await post(path, { _csrf: "forged" }, { cookie })).status}`).toBe(`${path} 403`);
      expect(`${path} ${(await post(path, {}, { cookie, "x-csrf-token": `${csrf}x` })).status}`).toBe(`${path} 403`);
    }
    // Nothing changed.
    expect((await mf.appliance.store.db.selectFrom("domains").select("name").execute()).map((d) => d.name)).toEqual(["example.test"]);
  });

  test("with the token (form field or header) the request goes through", async () => {
    expect((await post("/domains", { _csrf: csrf, name: "second.test" }, { cookie })).status).toBe(302);
    expect((await post("/domains/second.test/delete", { confirm: "yes" }, { cookie, "x-csrf-token": csrf })).status).toBe(302);
  });

  test("pages need a session: GET redirects to the login page, htmx requests get 401", async () => {
    const page = await fetch(at("/aliases"), { redirect: "manual" });
    expect(page.status).toBe(302);
    expect(page.headers.get("location")).toBe("/login?next=%2Faliases");
    expect((await fetch(at("/aliases/test?address=x@example.test"), { headers: { "hx-request": "true" } })).status).toBe(401);
  });

  test("security headers on every response", async () => {
    const res = await fetch(at("/login"));
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("referrer-policy")).toBe("same-origin");
    expect(await res.text()).not.toMatch(/<script>(?!<\/script>)/);
  });

  test("the session cookie is HttpOnly and SameSite=Strict", async () => {
    const res = await post("/login", { username: "admin", password: "correct horse battery staple" });
    expect(res.headers.get("set-cookie")).toMatch(/mf_session=[^;]+;.*HttpOnly/i);
    expect(res.headers.get("set-cookie")).toMatch(/SameSite=Strict/i);
    // Plain HTTP: a Secure cookie would never come back, HSTS would be ignored.
    expect(res.headers.get("set-cookie")).not.toMatch(/Secure/i);
    expect(res.headers.get("strict-transport-security")).toBeNull();
  });
});

describe("hostile input", () => {
  const withSession = { cookie, "x-csrf-token": "" };
  test("HTML in a description is escaped where it is shown", async () => {
    withSession.cookie = cookie;
    withSession["x-csrf-token"] = csrf;
    const res = await post("/aliases", { domain: "example.test", name: "xss", recipients: "a@x.test", description: '<script>alert("x")</script><img src=x onerror=alert(1)>' }, withSession);
    expect(res.status).toBe(302);
    const page = await (await fetch(at("/aliases?domain=example.test"), { headers: { cookie } })).text();
    expect(page).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(page).not.toContain("<img src=x");
  });

  test("10 kB fields and an invalid regex are refused with a message; nothing is stored", async () => {
    const big = "x".repeat(10_000);
    const before = await mf.appliance.store.db.selectFrom("aliases").select("id").execute();
    for (const [fields, message] of [
      [{ name: big, recipients: "a@x.test" }, "is not a valid local part"],
      [{ name: "ok1", recipients: big }, "longer than 2048"],
      [{ name: "ok2", recipients: "a@x.test", description: big }, "longer than 500"],
      [{ name: "/^(a|b$/", recipients: "a@x.test" }, "not a regular expression RE2 accepts"],
    ] as const) {
      const res = await post("/aliases", { domain: "example.test", ...fields }, withSession);
      expect(res.status).toBe(422);
      expect(await res.text()).toContain(message);
    }
    expect((await post("/domains", { name: big }, withSession)).status).toBe(422);
    expect((await post("/lists/deny", { deny_value: "192.0.2.1", reason: big }, withSession)).status).toBe(422);
    expect((await post("/lists/allow", { allow_value: big }, withSession)).status).toBe(422);
    expect(await mf.appliance.store.db.selectFrom("aliases").select("id").execute()).toEqual(before);
    expect(await mf.appliance.store.db.selectFrom("denylist").selectAll().execute()).toEqual([]);
  });

  test("a multipart body that does not parse is refused with 400, not 500 (found by test/fuzz.test.ts)", async () => {
    const broken = (contentType: string, headers: Record<string, string> = {}) =>
      fetch(at("/aliases"), { method: "POST", body: '--fz\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n', headers: { cookie, "content-type": contentType, ...headers }, redirect: "manual" });
    // Read by the route's form (the CSRF token in a header), and by the CSRF check itself (no header).
    expect((await broken("multipart/form-data", { "x-csrf-token": csrf })).status).toBe(400);
    expect((await broken("multipart/form-data; boundary=fz")).status).toBe(400);
    expect((await broken(`multipart/form-data; boundary=${"x".repeat(100)}`)).status).toBe(400);
    const login = await fetch(at("/login"), { method: "POST", body: "--fz\r\n", headers: { "content-type": "multipart/form-data; boundary=fz" } });
    expect(login.status).toBe(400);
  });

  test("settings: an invalid value is refused next to its field and the file is not changed", async () => {
    const res = await post("/settings", { "log.retention": "soon" }, withSession);
    expect(res.status).toBe(422);
    expect(await res.text()).toContain("must be a duration");
    expect(mf.appliance.config.log.retention).toBe(7 * 86_400_000);
    // Applied at once; a value the environment sets (the tests' greylist delay) keeps the environment's.
    const ok = await post("/settings", { "greylist.delay": "10m", "log.retention": "14d", "scan.fail_open": "true" }, withSession);
    expect(ok.status).toBe(302);
    expect(mf.appliance.config.log.retention).toBe(14 * 86_400_000);
    expect(mf.appliance.config.scan.failOpen).toBe(true);
    expect(mf.appliance.config.greylist.delay).toBe(0);
    const page = await (await fetch(at("/settings"), { headers: { cookie } })).text();
    expect(page).toMatch(/greylist\.delay<\/td><td class="mono">0<\/td><td class="muted">MAILFERRY_GREYLIST_DELAY/);
    const audit = await mf.appliance.store.db.selectFrom("audit_log").selectAll().where("action", "=", "settings.update").execute();
    expect(audit).toHaveLength(1);
  });
});

describe("login and sessions", () => {
  test("5 failed logins in 15 minutes lock that IP and user out, even with the right password", async () => {
    await createAdmin(mf.appliance.store.db, "victim", "the right password here");
    for (let i = 0; i < 5; i++) expect((await post("/login", { username: "victim", password: `wrong guess ${i}` })).status).toBe(401);
    const locked = await post("/login", { username: "victim", password: "the right password here" });
    expect(locked.status).toBe(429);
    expect(await locked.text()).toContain("Too many failed attempts");
    // Another user from the same IP is not affected.
    expect((await post("/login", { username: "admin", password: "correct horse battery staple" })).status).toBe(302);
  });

  test("sessions are listed and another one can be revoked", async () => {
    const db = mf.appliance.store.db;
    const admin = (await db.selectFrom("admins").selectAll().where("username", "=", "admin").executeTakeFirstOrThrow());
    const other = await createSession(db, admin.id, "192.0.2.7", "other browser");
    const page = await (await fetch(at("/account"), { headers: { cookie } })).text();
    expect(page).toContain("192.0.2.7");
    const id = (await db.selectFrom("web_sessions").select("id").where("ip", "=", "192.0.2.7").executeTakeFirstOrThrow()).id;
    expect((await post("/account/sessions/revoke", { id, _csrf: csrf }, { cookie })).status).toBe(302);
    expect((await fetch(at("/"), { headers: { cookie: `mf_session=${other.token}` }, redirect: "manual" })).status).toBe(302);
    expect((await fetch(at("/"), { headers: { cookie } })).status).toBe(200);
  });

  test("a recovery code logs in once", async () => {
    const db = mf.appliance.store.db;
    const { startTotp, confirmTotp, totpFor } = await import("../../src/store/admins.ts");
    const user = await createAdmin(db, "totp-user", "another long password");
    const secret = await startTotp(db, user.id);
    const fresh = (await db.selectFrom("admins").selectAll().where("id", "=", user.id).executeTakeFirstOrThrow());
    const codes = await confirmTotp(db, fresh, totpFor("totp-user", secret).generate());
    const asking = await post("/login", { username: "totp-user", password: "another long password" });
    expect(await asking.text()).toContain("Enter the code from your authenticator app.");
    expect((await post("/login", { username: "totp-user", password: "another long password", code: codes[0]! })).status).toBe(302);
    expect((await post("/login", { username: "totp-user", password: "another long password", code: codes[0]! })).status).toBe(401);
    // Spent once even when logins race with it (the list is compare-and-set), and another code still works.
    const racing = await Promise.all(Array.from({ length: 4 }, () => post("/login", { username: "totp-user", password: "another long password", code: codes[1]! })));
    expect(racing.map((r) => r.status).sort()).toEqual([302, 401, 401, 401]);
    expect((await post("/login", { username: "totp-user", password: "another long password", code: codes[2]! })).status).toBe(302);
  });
});

describe("API access and destinations pages", () => {
  const page = async (path: string) => (await fetch(at(path), { headers: { cookie } })).text();

  test("a token made in the UI is shown once, works against the API, and can be revoked there", async () => {
    const made = await post("/api-access", { _csrf: csrf, name: "from-ui", scope: "read" }, { cookie });
    expect(made.status).toBe(201);
    const token = /mf_[A-Za-z0-9_-]{43}/.exec(await made.text())![0];
    const api = () => fetch(at("/api/v1/domains"), { headers: { authorization: `Bearer ${token}` } });
    expect((await api()).status).toBe(200);
    const later = await page("/api-access");
    expect(later).toContain("from-ui");
    expect(later).not.toContain(token);
    expect((await post("/api-access", { _csrf: csrf, name: "bad name!", scope: "read" }, { cookie })).status).toBe(422);
    expect((await post("/api-access/revoke", { _csrf: csrf, name: "from-ui" }, { cookie })).status).toBe(302);
    expect((await api()).status).toBe(401);
  });

  test("the API reference lists every operation of the OpenAPI document", async () => {
    const html = await page("/api-access");
    const doc = (await (await fetch(at("/api/v1/openapi.json"))).json()) as { paths: Record<string, Record<string, { summary: string }>> };
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) expect(html).toContain(`${method.toUpperCase()} /api/v1${path}`);
    }
  });

  test("a destination added in the UI is queued a verification mail and shown as waiting", async () => {
    expect((await post("/destinations", { _csrf: csrf, address: "Someone@Gmail.test" }, { cookie })).status).toBe(302);
    expect(await page("/destinations")).toContain("someone@gmail.test");
    const row = await mf.appliance.store.db.selectFrom("destinations").selectAll().where("address", "=", "someone@gmail.test").executeTakeFirstOrThrow();
    expect(row).toMatchObject({ verified_at: null, sent_count: 1 });
    // The outbox tried it at once (gmail.test has no MX in this test's DNS, so it gave up).
    const tried = () => mf.logs.some((l) => String(l.event).startsWith("outbox.") && l.to === "someone@gmail.test");
    for (let i = 0; i < 50 && !tried(); i++) await Bun.sleep(100);
    expect(tried()).toBe(true);
    const bad = await post("/destinations", { _csrf: csrf, address: "not an address" }, { cookie });
    expect(bad.status).toBe(422);
    expect(await bad.text()).toContain("is not an email address");
    expect((await post("/destinations/remove", { _csrf: csrf, address: "someone@gmail.test" }, { cookie })).status).toBe(302);
    expect(await page("/destinations")).not.toContain("someone@gmail.test");
  });
});
