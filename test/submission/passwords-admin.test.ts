// App passwords in the admin UI and the API (docs/send-as.md): created with the
// secret shown in that answer only, listed without it, revoked; an address or
// a domain outside the managed ones is refused with the field named; only an
// admin-scope token or an admin session may touch them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { checkSubmissionAuth } from "../../src/store/passwords.ts";
import { createToken } from "../../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { signedInAdmin, startMailferry, type TestMailferry } from "../support/mailferry.ts";

let dns: DnsServer;
let mf: TestMailferry;
let cookie: string;
let csrf: string;
const tokens = { read: "", admin: "" };

beforeAll(async () => {
  dns = await startDnsServer({});
  mf = await startMailferry({ dns, domains: ["example.test"] });
  ({ cookie, csrf } = await signedInAdmin(mf.appliance.store.db));
  for (const scope of ["read", "admin"] as const) tokens[scope] = (await createToken(mf.appliance.store.db, `t-${scope}`, scope)).token;
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
});

const api = (method: string, path: string, token: string, body?: unknown) =>
  fetch(`${mf.httpUrl}api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
const ui = (path: string, body?: Record<string, string>) =>
  fetch(`${mf.httpUrl}${path.slice(1)}`, { method: body ? "POST" : "GET", headers: { cookie }, body: body ? new URLSearchParams({ _csrf: csrf, ...body }) : undefined, redirect: "manual" });
const authenticates = async (username: string, password: string) => "credential" in (await checkSubmissionAuth(mf.appliance.store.db, { username, password, client: "192.0.2.1" }));

describe("API", () => {
  test("create (the password once), list (never it), revoke; a domain password sends as any address of it", async () => {
    const created = await api("POST", "/passwords", tokens.admin, { send_as: "example.test", name: "laptop" });
    expect(created.status).toBe(201);
    const { password, info } = (await created.json()) as { password: string; info: { id: number; kind: string; send_as: string } };
    expect(password).toMatch(/^[0-9a-f]{40}$/);
    expect(info).toMatchObject({ kind: "domain", send_as: "example.test" });
    expect(await authenticates("anyone@example.test", password)).toBe(true);
    const listed = await (await api("GET", "/passwords", tokens.admin)).text();
    expect(JSON.parse(listed).items).toContainEqual(expect.objectContaining({ id: info.id, name: "laptop", revoked_at: null }));
    expect(listed).not.toContain(password);
    expect((await api("DELETE", `/passwords/${info.id}`, tokens.admin)).status).toBe(204);
    expect(await authenticates("anyone@example.test", password)).toBe(false);
    expect((await api("DELETE", `/passwords/${info.id}`, tokens.admin)).status).toBe(404);
  });

  test("an unmanaged domain is refused 422 naming send_as; a read token gets 403", async () => {
    const refused = await api("POST", "/passwords", tokens.admin, { send_as: "someone@elsewhere.test", name: "x" });
    expect(refused.status).toBe(422);
    expect(((await refused.json()) as { error: { field: string } }).error.field).toBe("send_as");
    expect((await api("POST", "/passwords", tokens.read, { send_as: "hello@example.test", name: "x" })).status).toBe(403);
    expect((await api("GET", "/passwords", tokens.read)).status).toBe(403);
  });
});

describe("UI", () => {
  test("the page creates a password shown once, then lists it and revokes it", async () => {
    const created = await ui("/passwords", { send_as: "hello@example.test", name: "Gmail" });
    expect(created.status).toBe(201);
    const html = await created.text();
    const password = /<pre id="new-password">([0-9a-f]{40})<\/pre>/.exec(html)?.[1];
    expect(password).toBeString();
    expect(await authenticates("hello@example.test", password!)).toBe(true);
    const page = await (await ui("/passwords")).text();
    expect(page).toContain("hello@example.test");
    expect(page).not.toContain(password!);
    const id = /name="id" value="(\d+)"/.exec(page)![1]!;
    const revoked = await ui("/passwords/revoke", { id });
    expect(revoked.status).toBe(302);
    expect(decodeURIComponent(revoked.headers.get("location")!)).toContain("App password Gmail of hello@example.test revoked.");
    expect(await authenticates("hello@example.test", password!)).toBe(false);
  });

  test("a bad address is shown on the form with its error", async () => {
    const res = await ui("/passwords", { send_as: "not an address@", name: "x" });
    expect(res.status).toBe(422);
    expect(await res.text()).toContain("is neither an email address nor a domain name");
  });
});
