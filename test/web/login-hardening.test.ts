// The findings of the outside review on the web side: a login throttle that
// parallel guesses cannot race, TOTP codes good once, no open redirect after
// login, bounded request bodies, and an export of an unknown domain that is
// the request's fault (404), not the server's.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { confirmTotp, createAdmin, startTotp, totpFor } from "../../src/store/admins.ts";
import { loginClient } from "../../src/web/ui/login.tsx";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { signedInAdmin, startMailferry, type TestMailferry } from "../support/mailferry.ts";

let dns: DnsServer;
let mf: TestMailferry;
let cookie: string;
let csrf: string;

beforeAll(async () => {
  dns = await startDnsServer({});
  mf = await startMailferry({ dns, domains: ["example.test"] });
  ({ cookie, csrf } = await signedInAdmin(mf.appliance.store.db));
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
});

const at = (path: string) => `${mf.httpUrl}${path.replace(/^\//, "")}`;
const login = (fields: Record<string, string>, query = "") => fetch(at(`/login${query}`), { method: "POST", body: new URLSearchParams(fields), redirect: "manual" });

describe("the login throttle", () => {
  test("3 bursts of 40 parallel wrong passwords get 5 guesses in all, then 429", async () => {
    await createAdmin(mf.appliance.store.db, "raced", "the right password here");
    const statuses: number[] = [];
    for (let burst = 0; burst < 3; burst++) {
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => login({ username: "raced", password: `guess ${burst}-${i}` })));
      statuses.push(...answers.map((a) => a.status));
    }
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(115);
    expect((await login({ username: "raced", password: "the right password here" })).status).toBe(429);
  }, 60_000);

  test("an IPv6 client counts by its /64; an IPv4 client by its address", () => {
    expect(loginClient("2001:db8:1:2::10")).toBe(loginClient("2001:db8:1:2:aaaa:bbbb:cccc:dddd"));
    expect(loginClient("2001:db8:1:2::10")).not.toBe(loginClient("2001:db8:1:3::10"));
    expect(loginClient("192.0.2.1")).not.toBe(loginClient("192.0.2.2"));
  });
});

describe("TOTP", () => {
  async function totpAdmin(name: string) {
    const db = mf.appliance.store.db;
    const user = await createAdmin(db, name, "a long enough password");
    const secret = await startTotp(db, user.id);
    // Confirmed with the previous step's code, which that spends: the current code is still good.
    const now = Date.now();
    await confirmTotp(db, (await db.selectFrom("admins").selectAll().where("id", "=", user.id).executeTakeFirstOrThrow()), totpFor(name, secret).generate({ timestamp: now - 30_000 }), now);
    return totpFor(name, secret);
  }

  test("a code is accepted once: the replay of a used code is refused, also in parallel", async () => {
    const totp = await totpAdmin("replayed");
    const code = totp.generate();
    const answers = await Promise.all([1, 2, 3].map(() => login({ username: "replayed", password: "a long enough password", code })));
    expect(answers.map((a) => a.status).sort()).toEqual([302, 401, 401]);
    const again = await login({ username: "replayed", password: "a long enough password", code });
    expect(again.status).toBe(401);
    expect(await again.text()).toContain("That code is not valid.");
  });

  test("parallel wrong codes with the right password get 5 tries, then 429", async () => {
    await totpAdmin("guessed");
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => login({ username: "guessed", password: "a long enough password", code: String(100000 + i) })));
    expect(answers.filter((a) => a.status === 401)).toHaveLength(5);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(25);
  }, 60_000);
});

describe("after login", () => {
  test("only a path of this site is followed: /\\evil.example and the like go to /", async () => {
    await createAdmin(mf.appliance.store.db, "traveller", "yet another password");
    const account = { username: "traveller", password: "yet another password" };
    for (const next of ["/%5Cevil.example", "//evil.example", "https://evil.example/", "/%09/evil.example", "/%5C%5Cevil.example"]) {
      const answer = await login(account, `?next=${next}`);
      expect([next, answer.status, answer.headers.get("location")]).toEqual([next, 302, "/"]);
    }
    expect((await login(account, `?next=${encodeURIComponent("/aliases?domain=example.test")}`)).headers.get("location")).toBe("/aliases?domain=example.test");
  });
});

describe("request bodies", () => {
  test("an unauthenticated POST /login of 120 MB is refused with 413 before it is read", async () => {
    const size = 120 * 1024 * 1024;
    const started = performance.now();
    // Declares 120 MB but sends one chunk: the limit answers from the header, without waiting for the rest.
    const answer = await fetch(at("/login"), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "content-length": String(size) },
      body: new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode("username=a&password=")) }),
      duplex: "half",
    } as RequestInit);
    expect(answer.status).toBe(413);
    expect(await answer.text()).toContain("larger than the limit of 1 MB");
    expect(performance.now() - started).toBeLessThan(5000);
  });

  test("a chunked body over the limit is cut off as it arrives", async () => {
    const chunk = new Uint8Array(256 * 1024).fill(97);
    let sent = 0;
    const body = new ReadableStream({
      pull: (c) => (sent++ < 8 ? c.enqueue(chunk) : c.close()),
    });
    const answer = await fetch(at("/login"), { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body, duplex: "half" } as RequestInit);
    expect(answer.status).toBe(413);
  });

  test("the API answers 413 in its JSON error shape, before authentication", async () => {
    const answer = await fetch(at("/api/v1/aliases"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ description: "x".repeat(2 * 1024 * 1024) }) });
    expect(answer.status).toBe(413);
    expect(((await answer.json()) as { error: { code: string } }).error.code).toBe("too_large");
  });

  test("an alias import may be larger than a form (up to 5 MB)", async () => {
    const text = `# ${"x".repeat(2 * 1024 * 1024)}\nhello: someone@elsewhere.test\n`;
    const answer = await fetch(at("/aliases/import"), { method: "POST", headers: { cookie }, body: new URLSearchParams({ _csrf: csrf, domain: "example.test", text, mode: "preview" }) });
    expect(answer.status).not.toBe(413);
    expect(answer.status).toBeLessThan(500);
  });
});

describe("alias export", () => {
  test("an unknown domain answers 404, a managed one its aliases", async () => {
    const unknown = await fetch(at("/aliases/export?domain=unknown.test"), { headers: { cookie } });
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain("not managed here");
    expect((await fetch(at("/aliases/export?domain=example.test"), { headers: { cookie } })).status).toBe(200);
  });
});
