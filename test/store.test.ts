import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../src/errors.ts";
import { adapt, openStore, type Store } from "../src/store/db.ts";
import { addDomain, findDomain, listDomains, parseDomainName, removeDomain } from "../src/store/domains.ts";
import { listEvents, MAX_STORED_HEADERS, recordEvent } from "../src/store/events.ts";
import { migrations } from "../src/store/migrations/index.ts";

const open: Store[] = [];
const dirs: string[] = [];
async function store(path?: string): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-store-"));
  dirs.push(dir);
  const s = await openStore(path ?? join(dir, "test.db"));
  open.push(s);
  return s;
}
afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => {});
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

describe("database", () => {
  test("WAL mode, foreign keys on, busy timeout set", async () => {
    const s = await store();
    expect(s.sqlite.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(s.sqlite.query("PRAGMA foreign_keys").get()).toEqual({ foreign_keys: 1 });
    expect(s.sqlite.query("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000 });
  });

  test("migrations are applied once and recorded; reopening is a no-op", async () => {
    const s = await store();
    const applied = s.sqlite.query("SELECT name FROM kysely_migration ORDER BY name").all() as { name: string }[];
    expect(applied.map((m) => m.name)).toEqual(Object.keys(migrations));
    const tables = (s.sqlite.query("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
    for (const t of ["domains", "aliases", "settings", "events"]) expect(tables).toContain(t);
    await addDomain(s.db, "kept.test");
    await s.close();
    open.pop();
    const again = await store(s.path);
    expect((await listDomains(again.db)).map((d) => d.name)).toEqual(["kept.test"]);
  });
});

describe("domains", () => {
  test("upgrading a database made before subdomain aliases keeps every alias, its id and its vacation reply", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailferry-store-"));
    dirs.push(dir);
    const path = join(dir, "old.db");
    // A database as the version before migration 008 left it.
    const { Database } = await import("bun:sqlite");
    const { Kysely, SqliteDialect } = await import("kysely");
    const { Migrator } = await import("kysely/migration");
    const raw = new Database(path, { create: true, strict: true });
    raw.run("PRAGMA foreign_keys = ON");
    const old = new Kysely<unknown>({ dialect: new SqliteDialect({ database: adapt(raw) }) });
    const before008 = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < "008"));
    expect((await new Migrator({ db: old, provider: { getMigrations: async () => before008 } }).migrateToLatest()).error).toBeUndefined();
    raw.run("INSERT INTO domains (name, created_at, updated_at, accept_subdomains) VALUES ('old.test', 1, 1, 1), ('plain.test', 1, 1, 0)");
    raw.run(`INSERT INTO aliases (id, domain_id, matcher, pattern, recipients, created_at, updated_at) VALUES (41, 1, 'exact', 'hello', '["a@x.test"]', 1, 1)`);
    raw.run("INSERT INTO vacations (alias_id, enabled, subject, message, updated_at) VALUES (41, 1, 'away', 'back monday', 1)");
    await old.destroy();

    const s = await store(path);
    expect(s.sqlite.query("SELECT id, subdomain, pattern FROM aliases").all()).toEqual([{ id: 41, subdomain: "", pattern: "hello" }]);
    expect(s.sqlite.query("SELECT alias_id, subject FROM vacations").all()).toEqual([{ alias_id: 41, subject: "away" }]);
    // An explicit "on" stays on; the old default becomes "follow the configuration".
    expect(s.sqlite.query("SELECT name, accept_subdomains, random_subdomain FROM domains ORDER BY name").all()).toEqual([
      { name: "old.test", accept_subdomains: 1, random_subdomain: null },
      { name: "plain.test", accept_subdomains: null, random_subdomain: null },
    ]);
    expect(s.sqlite.query("PRAGMA foreign_keys").get()).toEqual({ foreign_keys: 1 });
    expect(s.sqlite.query("PRAGMA foreign_key_check").all()).toEqual([]);
    // The rebuilt table still cascades and still bumps the routing version.
    const version = () => (s.sqlite.query("SELECT value FROM settings WHERE key = 'routing_version'").get() as { value: string }).value;
    const v1 = version();
    s.sqlite.run("DELETE FROM aliases WHERE id = 41");
    expect(version()).not.toBe(v1);
    expect(s.sqlite.query("SELECT count(*) AS n FROM vacations").get()).toEqual({ n: 0 });
  });

  test("names are normalised: case, trailing dot, IDN to punycode", async () => {
    const s = await store();
    expect((await addDomain(s.db, "Example.COM.")).name).toBe("example.com");
    expect((await addDomain(s.db, "Bücher.example")).name).toBe("xn--bcher-kva.example");
    expect(await findDomain(s.db, "example.com")).toBeDefined();
  });

  test("invalid names are refused with a reason and nothing is stored", async () => {
    const s = await store();
    for (const bad of ["", "nodot", "-bad.test", "a..b.test", "space here.test", "x".repeat(64) + ".test", "under_score.test"]) {
      const err = await addDomain(s.db, bad).catch((e) => e);
      expect(err).toBeInstanceOf(UserError);
      expect(err.kind).toBe("invalid");
      expect(err.field).toBe("name");
    }
    expect(await listDomains(s.db)).toEqual([]);
  });

  test("a duplicate is a conflict, removing an unknown one is not found", async () => {
    const s = await store();
    await addDomain(s.db, "example.com");
    expect((await addDomain(s.db, "EXAMPLE.com").catch((e) => e)).kind).toBe("conflict");
    expect((await removeDomain(s.db, "other.com").catch((e) => e)).kind).toBe("not_found");
    expect((await listDomains(s.db)).length).toBe(1);
  });

  test("removing a domain removes its aliases (cascade)", async () => {
    const s = await store();
    const d = await addDomain(s.db, "example.com");
    const now = Date.now();
    await s.db.insertInto("aliases").values({ domain_id: d.id, matcher: "exact", pattern: "hello", recipients: '["a@x.test"]', disabled_mode: null, created_at: now, updated_at: now }).execute();
    await removeDomain(s.db, "example.com");
    expect(await s.db.selectFrom("aliases").selectAll().execute()).toEqual([]);
  });

  test("parseDomainName is the one validation used by every caller", () => {
    expect(parseDomainName(" Mail.Example.org ")).toBe("mail.example.org");
    expect(() => parseDomainName("localhost")).toThrow(UserError);
  });
});

describe("events", () => {
  test("recorded and listed newest first; header blocks are capped", async () => {
    const s = await store();
    const base = { session_id: "s1", remote_ip: "127.0.0.1", enhanced: "2.0.0", text: "ok", mail_from: null, recipients: null, domain: null, message_id: null, subject: null, detail: null };
    await recordEvent(s.db, { ...base, at: 1, stage: "mail", code: 250, headers: null });
    await recordEvent(s.db, { ...base, at: 2, stage: "data", code: 451, headers: "X: " + "y".repeat(MAX_STORED_HEADERS * 2) });
    const events = await listEvents(s.db, { sessionId: "s1" });
    expect(events.map((e) => e.stage)).toEqual(["data", "mail"]);
    expect(events[0]!.headers!.length).toBe(MAX_STORED_HEADERS);
    expect((await listEvents(s.db, { stage: "mail" })).length).toBe(1);
  });
});
