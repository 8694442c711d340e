// The JSON API at the HTTP level: authentication and scopes, the error shape,
// every resource, stable paging, rate limiting and the OpenAPI document.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { compileErrors, validate } from "@readme/openapi-parser";
import { createToken } from "../../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";

let dns: DnsServer;
let mf: TestMailferry;
const tokens: Record<"read" | "write" | "admin", string> = { read: "", write: "", admin: "" };

beforeAll(async () => {
  // example.test publishes its MX; the other records are missing, so the DNS check shows both states.
  dns = await startDnsServer({ "example.test": { MX: [{ priority: 10, exchange: TEST_HOSTNAME }] } });
  mf = await startMailferry({ dns, domains: ["example.test"] });
  for (const scope of ["read", "write", "admin"] as const) tokens[scope] = (await createToken(mf.appliance.store.db, `test-${scope}`, scope)).token;
});
afterAll(async () => {
  await mf.stop();
  await dns.close();
});

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON of many shapes
  headers: Headers;
}

async function call(method: string, path: string, options: { token?: string | null; body?: unknown; raw?: string } = {}): Promise<Answer> {
  const token = options.token === undefined ? tokens.admin : options.token;
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined || options.raw !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${mf.httpUrl}api/v1${path}`, { method, headers, body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // text/plain answers (TXT export) stay text
  }
  return { status: res.status, body, headers: res.headers };
}

const errorOf = (a: Answer) => a.body.error as { code: string; message: string; field?: string };

describe("authentication and scopes", () => {
  test("no token, a made-up token and a malformed header get 401 with the error shape", async () => {
    for (const token of [null, "mf_notarealtoken", "Basic abc"]) {
      const a = await call("GET", "/domains", { token });
      expect(a.status).toBe(401);
      expect(errorOf(a).code).toBe("unauthorized");
      expect(a.headers.get("www-authenticate")).toContain("Bearer");
    }
  });

  test("a revoked token stops working at once", async () => {
    const created = await call("POST", "/tokens", { body: { name: "short-lived", scope: "read" } });
    expect(created.status).toBe(201);
    const secret = created.body.token as string;
    expect((await call("GET", "/domains", { token: secret })).status).toBe(200);
    expect((await call("DELETE", "/tokens/short-lived")).status).toBe(204);
    expect((await call("GET", "/domains", { token: secret })).status).toBe(401);
    const listed = await call("GET", "/tokens");
    const entry = listed.body.items.find((t: { name: string }) => t.name === "short-lived");
    expect(entry.revoked_at).not.toBeNull();
    expect(JSON.stringify(listed.body)).not.toContain(secret);
  });

  test("a read token can read but not write: 403", async () => {
    expect((await call("GET", "/aliases", { token: tokens.read })).status).toBe(200);
    expect((await call("POST", "/aliases/test", { token: tokens.read, body: { address: "x@example.test" } })).status).toBe(200);
    const denied = await call("POST", "/aliases", { token: tokens.read, body: { domain: "example.test", name: "ro", recipients: ["a@dest.test"] } });
    expect(denied.status).toBe(403);
    expect(errorOf(denied)).toMatchObject({ code: "forbidden" });
    expect((await call("GET", "/aliases?q=ro")).body.items).toEqual([]);
  });

  test("tokens and settings need the admin scope", async () => {
    for (const [method, path] of [
      ["GET", "/tokens"],
      ["GET", "/settings"],
    ]) {
      expect((await call(method!, path!, { token: tokens.write })).status).toBe(403);
      expect((await call(method!, path!, { token: tokens.admin })).status).toBe(200);
    }
  });

  test("over the per-token rate limit: 429 with Retry-After; other tokens are not affected", async () => {
    const { token } = await createToken(mf.appliance.store.db, "burst", "read");
    const { token: other } = await createToken(mf.appliance.store.db, "calm", "read");
    const before = mf.appliance.config.api.rateLimit;
    mf.appliance.config.api.rateLimit = 3;
    try {
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await call("GET", "/domains", { token })).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      const limited = await call("GET", "/domains", { token });
      expect(errorOf(limited).code).toBe("rate_limited");
      expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
      expect((await call("GET", "/domains", { token: other })).status).toBe(200);
    } finally {
      mf.appliance.config.api.rateLimit = before;
    }
  });

  test("every write is in the audit log under the token's name", async () => {
    await call("POST", "/denylist", { token: tokens.write, body: { value: "198.51.100.7", reason: "audit test" } });
    const row = await mf.appliance.store.db.selectFrom("audit_log").selectAll().where("action", "=", "deny.add").orderBy("id", "desc").executeTakeFirstOrThrow();
    expect(row).toMatchObject({ actor: "token:test-write", target: "198.51.100.7" });
  });
});

describe("errors", () => {
  test("unknown fields are refused, naming the field", async () => {
    const a = await call("POST", "/aliases", { body: { domain: "example.test", name: "x", recipients: ["a@dest.test"], colour: "red" } });
    expect(a.status).toBe(400);
    expect(errorOf(a)).toMatchObject({ code: "bad_request", field: "colour" });
  });

  test("a wrong type names the field", async () => {
    const a = await call("POST", "/aliases", { body: { domain: "example.test", name: "x", recipients: "a@dest.test" } });
    expect(a.status).toBe(400);
    expect(errorOf(a).field).toBe("recipients");
  });

  test("malformed JSON is a 400", async () => {
    const a = await call("POST", "/aliases", { raw: "{not json" });
    expect(a.status).toBe(400);
    expect(errorOf(a).code).toBe("bad_request");
  });

  test("values the rules refuse are 422 naming the field; nothing is stored", async () => {
    const cases: [unknown, string][] = [
      [{ domain: "example.test", name: "not valid", recipients: ["a@dest.test"] }, "name"],
      [{ domain: "example.test", name: "/(a|b$/", recipients: ["a@dest.test"] }, "name"],
      [{ domain: "example.test", name: "ok", recipients: ["not an address"] }, "recipients"],
    ];
    for (const [body, field] of cases) {
      const a = await call("POST", "/aliases", { body });
      expect(a.status).toBe(422);
      expect(errorOf(a)).toMatchObject({ code: "invalid", field });
    }
    expect((await call("GET", "/aliases?domain=example.test")).body.items).toEqual([]);
  });

  test("a conflict is a 409; a missing resource a 404; an unknown route a 404", async () => {
    expect((await call("POST", "/domains", { body: { name: "example.test" } })).status).toBe(409);
    expect(errorOf(await call("GET", "/domains/nope.test"))).toMatchObject({ code: "not_found" });
    expect((await call("GET", "/aliases/999999")).status).toBe(404);
    expect((await call("GET", "/no-such-thing")).status).toBe(404);
  });
});

describe("resources", () => {
  test("domains: create, read, change settings (with follow-the-default), DNS status, key rotation, delete", async () => {
    const created = await call("POST", "/domains", { token: tokens.write, body: { name: "Other.TEST" } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "other.test", accept_subdomains: null, effective: { accept_subdomains: false } });
    const patched = await call("PATCH", "/domains/other.test", { body: { accept_subdomains: true, max_targets: 3, delivery_port: 2526 } });
    expect(patched.body).toMatchObject({ accept_subdomains: true, max_targets: 3, delivery_port: 2526, effective: { accept_subdomains: true } });
    const wildcard = (a: Answer) => a.body.records.some((r: { name: string; type: string }) => r.name === "*.other.test." && r.type === "MX");
    expect(wildcard(await call("GET", "/domains/other.test/dns"))).toBe(true); // subdomains need a wildcard MX
    const back = await call("PATCH", "/domains/other.test", { body: { accept_subdomains: null } });
    expect(wildcard(await call("GET", "/domains/other.test/dns"))).toBe(false);
    expect(back.body).toMatchObject({ accept_subdomains: null, effective: { accept_subdomains: false } });
    const bad = await call("PATCH", "/domains/other.test", { body: { random_subdomain_length: 64 } });
    expect(bad.status).toBe(422);
    expect(errorOf(bad).field).toBe("random_subdomain_length");
    expect((await call("GET", "/domains/other.test")).body.max_targets).toBe(3);
    const key1 = (await call("POST", "/domains/other.test/webhook-key")).body.webhook_key;
    const key2 = (await call("POST", "/domains/other.test/webhook-key")).body.webhook_key;
    expect(key1).toMatch(/^[0-9a-f]{64}$/);
    expect(key2).not.toBe(key1);
    // Rotation is two-phase: the new key is pending until DNS serves it or it is activated.
    const pending = (await call("POST", "/domains/other.test/dkim-rotate")).body.selector;
    expect(pending).toBeString();
    expect((await call("POST", "/domains/other.test/dkim-rotate")).status).toBe(409);
    expect((await call("POST", "/domains/other.test/dkim-activate")).body).toEqual({ selector: pending, retired: ["mailferry"] });
    expect((await call("POST", "/domains/other.test/dkim-activate")).status).toBe(404);
    expect((await call("DELETE", "/domains/other.test")).status).toBe(204);
    expect((await call("GET", "/domains/other.test")).status).toBe(404);
  });

  test("domains: the DNS records with their live status from DNS", async () => {
    const a = await call("GET", "/domains/example.test/dns", { token: tokens.read });
    expect(a.status).toBe(200);
    const mx = a.body.records.find((r: { type: string }) => r.type === "MX");
    expect(mx).toMatchObject({ status: "ok", name: "example.test." });
    const spf = a.body.records.find((r: { name: string; type: string }) => r.type === "TXT" && r.name === "example.test.");
    expect(spf.status).toBe("missing");
  });

  test("aliases: create, read, change, test, export, import (dry run, errors, apply), delete", async () => {
    const created = await call("POST", "/aliases", { token: tokens.write, body: { domain: "example.test", name: "sales", recipients: ["a@dest.test", "https://hooks.dest.test/in"], description: "team" } });
    expect(created.status).toBe(201);
    const id = created.body.alias.id as number;
    expect(created.body.alias).toMatchObject({ domain: "example.test", subdomain: "", name: "sales", matcher: "exact", recipients: ["a@dest.test", "https://hooks.dest.test/in"], disabled: null });
    expect((await call("GET", `/aliases/${id}`, { token: tokens.read })).body.description).toBe("team");
    const changed = await call("PATCH", `/aliases/${id}`, { body: { disabled: "soft" } });
    expect(changed.body.alias).toMatchObject({ disabled: "soft", recipients: ["a@dest.test", "https://hooks.dest.test/in"] });
    const tested = await call("POST", "/aliases/test", { body: { address: "sales@example.test" } });
    expect(tested.body).toMatchObject({ action: "refuse", reply: { code: 421, enhanced: "4.2.1" }, alias: { name: "sales" } });
    await call("PATCH", `/aliases/${id}`, { body: { disabled: null } });
    const delivering = await call("POST", "/aliases/test", { body: { address: "sales+q4@example.test" } });
    expect(delivering.body.targets).toEqual([
      { kind: "address", target: "a+q4@dest.test", port: null, alias: "sales" },
      { kind: "webhook", target: "https://hooks.dest.test/in", port: null, alias: "sales" },
    ]);

    const exported = await call("GET", "/aliases/export?domain=example.test");
    expect(exported.body).toBe("forward-email=sales:a@dest.test,sales:https://hooks.dest.test/in\n");

    const dry = await call("POST", "/aliases/import", { body: { domain: "example.test", text: "forward-email=info:b@dest.test\nforward-email=/^x-(.*)$/:$1@dest.test" } });
    expect(dry.body).toMatchObject({ applied: false, aliases: [{ name: "info" }, { name: "/^x-(.*)$/" }] });
    expect((await call("POST", "/aliases/test", { body: { address: "info@example.test" } })).body.action).toBe("refuse");
    const broken = await call("POST", "/aliases/import", { body: { domain: "example.test", text: "forward-email=info:b@dest.test\nforward-email=bad alias:x@dest.test", apply: true } });
    expect(broken.status).toBe(422);
    expect(broken.body.errors[0]).toMatchObject({ line: 2 });
    expect((await call("POST", "/aliases/test", { body: { address: "info@example.test" } })).body.action).toBe("refuse");
    const applied = await call("POST", "/aliases/import", { body: { domain: "example.test", text: "forward-email=info:b@dest.test", apply: true } });
    expect(applied.body.applied).toBe(true);
    expect((await call("POST", "/aliases/test", { body: { address: "info@example.test" } })).body.targets[0].target).toBe("b@dest.test");

    expect((await call("DELETE", `/aliases/${id}`, { token: tokens.write })).status).toBe(204);
    expect((await call("GET", `/aliases/${id}`)).status).toBe(404);
  });

  test("aliases: cursor paging is stable while aliases are added and removed", async () => {
    await call("POST", "/domains", { body: { name: "paging.test" } });
    for (let i = 0; i < 7; i++) await call("POST", "/aliases", { body: { domain: "paging.test", name: `p${i}`, recipients: ["a@dest.test"] } });
    const seen: string[] = [];
    let cursor: string | null = null;
    let round = 0;
    do {
      const page: Answer = await call("GET", `/aliases?domain=paging.test&limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      seen.push(...page.body.items.map((a: { name: string }) => a.name));
      cursor = page.body.next_cursor;
      // Changes between pages: one alias already seen is removed, a new one is added at the end.
      if (round++ === 0) {
        await call("DELETE", `/aliases/${page.body.items[0].id}`);
        await call("POST", "/aliases", { body: { domain: "paging.test", name: "late", recipients: ["a@dest.test"] } });
      }
    } while (cursor);
    expect(seen).toEqual(["p0", "p1", "p2", "p3", "p4", "p5", "p6", "late"]);
    expect((await call("GET", "/aliases?limit=0")).status).toBe(400);
    expect((await call("GET", "/aliases?cursor=abc")).status).toBe(400);
  });

  test("destinations: add (pending), list, resend refused within a minute, remove", async () => {
    const added = await call("POST", "/destinations", { token: tokens.write, body: { address: "Me@Gmail.test" } });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ destination: { address: "me@gmail.test", status: "pending" }, verification_sent: true });
    expect((await call("GET", "/destinations/me@gmail.test", { token: tokens.read })).body.status).toBe("pending");
    expect((await call("GET", "/destinations")).body.items.map((d: { address: string }) => d.address)).toContain("me@gmail.test");
    const resend = await call("POST", "/destinations/me@gmail.test/resend");
    expect(resend.status).toBe(409);
    const onManaged = await call("POST", "/destinations", { body: { address: "x@example.test" } });
    expect(onManaged.status).toBe(422);
    expect((await call("DELETE", "/destinations/me@gmail.test")).status).toBe(204);
    expect((await call("GET", "/destinations/me@gmail.test")).status).toBe(404);
  });

  test("mail log and stats: filters, paging by cursor, one event", async () => {
    // Three refused recipients make three events.
    const { SmtpTalk } = await import("../support/smtp-client.ts");
    const { talk } = await SmtpTalk.connect(mf.smtpPort);
    await talk.send("EHLO client.test");
    await talk.send("MAIL FROM:<logger@sender.test>");
    for (const r of ["n1@example.test", "n2@example.test", "n3@example.test"]) expect((await talk.send(`RCPT TO:<${r}>`)).code).toBe(550);
    talk.close();
    const first = await call("GET", "/log?sender=logger@sender.test&verdict=rejected&limit=2", { token: tokens.read });
    expect(first.body.items.map((e: { recipients: string[] }) => e.recipients[0])).toEqual(["n3@example.test", "n2@example.test"]);
    const second = await call("GET", `/log?sender=logger@sender.test&verdict=rejected&limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.items.map((e: { recipients: string[] }) => e.recipients[0])).toEqual(["n1@example.test"]);
    expect(second.body.next_cursor).toBeNull();
    const one = await call("GET", `/log/${first.body.items[0].id}`);
    expect(one.body).toMatchObject({ code: 550, enhanced: "5.1.1", mail_from: "logger@sender.test" });
    const stats = await call("GET", "/stats?days=7");
    expect(stats.body.days).toHaveLength(7);
    expect(stats.body.series.rejected.at(-1)).toBeGreaterThanOrEqual(3);
    expect((await call("GET", "/log?verdict=maybe")).status).toBe(400);
  });

  test("deny and allow lists: add, list, remove (a CIDR in the path is URL-encoded)", async () => {
    expect((await call("POST", "/denylist", { body: { value: "203.0.113.0/24", expires: "7d" } })).status).toBe(201);
    expect((await call("GET", "/denylist")).body.items.map((e: { value: string }) => e.value)).toContain("203.0.113.0/24");
    expect((await call("DELETE", `/denylist/${encodeURIComponent("203.0.113.0/24")}`)).status).toBe(204);
    expect((await call("POST", "/denylist", { body: { value: "x", expires: "soon" } })).status).toBe(422);
    expect((await call("POST", "/allowlist", { body: { value: "partner.test", note: "ok" } })).status).toBe(201);
    expect((await call("GET", "/allowlist")).body.items).toContainEqual(expect.objectContaining({ value: "partner.test", note: "ok" }));
    expect((await call("DELETE", "/allowlist/partner.test")).status).toBe(204);
    expect((await call("DELETE", "/allowlist/partner.test")).status).toBe(404);
  });

  test("settings: read with origins, change one (applied at once), refuse a bad value and an unknown key", async () => {
    const before = await call("GET", "/settings");
    expect(before.body.items).toContainEqual({ key: "greylist.delay", value: "0", origin: "MAILFERRY_GREYLIST_DELAY" });
    const changed = await call("PATCH", "/settings", { body: { "log.retention": "3d" } });
    expect(changed.status).toBe(200);
    expect(changed.body.items).toContainEqual(expect.objectContaining({ key: "log.retention", value: "3d" }));
    expect(mf.appliance.config.log.retention).toBe(3 * 86_400_000);
    const bad = await call("PATCH", "/settings", { body: { "log.retention": "forever" } });
    expect(bad.status).toBe(422);
    expect(errorOf(bad).field).toBe("log.retention");
    expect(errorOf(bad).message).toContain("config.toml=\"forever\""); // the file the admin knows, not the draft it was checked in
    expect(errorOf(bad).message).not.toContain(".tmp-");
    expect((await call("PATCH", "/settings", { body: { "no.such": "1" } })).status).toBe(400);
    expect((await call("PATCH", "/settings", { body: { "log.retention": null } })).status).toBe(200);
  });

  test("tokens: created with a name and scope, the secret shown once", async () => {
    const created = await call("POST", "/tokens", { body: { name: "ci", scope: "write" } });
    expect(created.body.token).toMatch(/^mf_[A-Za-z0-9_-]{43}$/);
    expect(created.body.info).toMatchObject({ name: "ci", scope: "write", revoked_at: null });
    expect((await call("POST", "/tokens", { body: { name: "ci", scope: "read" } })).status).toBe(409);
    expect((await call("POST", "/tokens", { body: { name: "bad name", scope: "read" } })).status).toBe(422);
    expect((await call("POST", "/tokens", { body: { name: "x", scope: "root" } })).status).toBe(400);
  });
});

describe("nodes", () => {
  test("GET /nodes lists the one server (read scope), alive", async () => {
    const a = await call("GET", "/nodes", { token: tokens.read });
    expect(a.status).toBe(200);
    expect(a.body.items).toEqual([{ hostname: TEST_HOSTNAME, alive: true, started_at: expect.any(String), last_seen: expect.any(String) }]);
    expect((await call("GET", "/nodes", { token: null })).status).toBe(401);
  });
});

describe("OpenAPI document", () => {
  test("is public, validates as OpenAPI 3.1 and lists every route of the API", async () => {
    const doc = (await call("GET", "/openapi.json", { token: null })).body;
    expect(doc.openapi).toBe("3.1.0");
    const result = await validate(structuredClone(doc));
    expect(result.valid ? "valid" : compileErrors(result)).toBe("valid");
    // The validator itself catches a broken document (so the check above can fail).
    expect((await validate({ ...structuredClone(doc), paths: { "/x": { get: { responses: "nope" } } } })).valid).toBe(false);
    const documented = new Set(Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
    const served = new Set(
      mf.appliance.web.routes
        .filter((r) => r.path.startsWith("/api/v1/") && r.method !== "ALL" && !r.path.endsWith("/openapi.json"))
        .map((r) => `${r.method} ${r.path.slice("/api/v1".length).replace(/:(\w+)/g, "{$1}")}`),
    );
    expect(served.size).toBeGreaterThan(30);
    expect([...served].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !served.has(r))).toEqual([]);
    for (const ops of Object.values(doc.paths as Record<string, Record<string, { security?: unknown; responses: Record<string, unknown> }>>)) {
      for (const op of Object.values(ops)) {
        expect(op.security).toEqual([{ bearer: [] }]);
        expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["400", "401", "403", "429"]));
      }
    }
  });
});
