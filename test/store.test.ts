import { afterAll, afterEach, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { Database } from "bun:sqlite";
import { sql } from "kysely";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../src/errors.ts";
import { adapt, hotStatement, openDatabase, openStore, type SqliteStore, type Store } from "../src/store/db.ts";
import { addDomain, findDomain, listDomains, parseDomainName, removeDomain } from "../src/store/domains.ts";
import { createEventRecorder, listEvents, MAX_STORED_HEADERS, writeEvents } from "../src/store/events.ts";
import { claimDue, createDeliveredMarks, dueOutbox, enqueue, markDelivered, touchFingerprint } from "../src/store/deliveries.ts";
import { createJobLocks, JOB_KINDS, JOB_LOCK_POLL_MS } from "../src/store/job-locks.ts";
import { createLogger } from "../src/log.ts";
import { activatePendingKey, rotateDkimKey, signingKey } from "../src/store/dkim-keys.ts";
import { versionCounter } from "../src/store/settings.ts";
import type { NewEvent } from "../src/store/schema.ts";
import { setVacation, vacationOf } from "../src/store/vacations.ts";
import { addAlias, searchAliases } from "../src/store/aliases.ts";
import { releaseAttempt, reserveAttempt } from "../src/store/admins.ts";
import { anyTestMessageDelivered, audit } from "../src/store/audit.ts";
import { housekeeping } from "../src/store/housekeeping.ts";
import { countVerdict } from "../src/store/catchall.ts";
import { bumpCounter } from "../src/store/senders.ts";
import { migrations } from "../src/store/migrations/index.ts";
import { type Dialect, ddl } from "../src/store/dialect.ts";
import { type Postgres, startPostgres } from "./support/postgres.ts";

const open: Store[] = [];
const dirs: string[] = [];
async function store(path?: string): Promise<SqliteStore> {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-store-"));
  dirs.push(dir);
  const s: SqliteStore = await openStore(path ?? join(dir, "test.db"));
  open.push(s);
  return s;
}
afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => {});
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

// The checks that hold on either dialect run on both (docs/operations.md, "PostgreSQL").
const DIALECTS: Dialect[] = ["sqlite", "postgres"];
let postgres: Postgres | undefined;
beforeAll(async () => {
  postgres = await startPostgres();
}, 120_000);
afterAll(() => postgres?.stop());

const appliedNames = async (s: Store) => (await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(s.db)).rows.map((r) => r.name);

/** A fresh store of the dialect, or the one at `location` opened again. */
async function openIn(dialect: Dialect, location?: string): Promise<Store> {
  if (dialect === "sqlite") return store(location);
  const s = await openDatabase(location ?? (await postgres!.createDatabase()));
  open.push(s);
  return s;
}

describe("database", () => {
  test("WAL mode, foreign keys on, busy timeout set", async () => {
    const s = await store();
    expect(s.sqlite.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(s.sqlite.query("PRAGMA foreign_keys").get()).toEqual({ foreign_keys: 1 });
    expect(s.sqlite.query("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000 });
  });

  test("synchronous=FULL: fingerprints and the outbox survive a power cut once committed", async () => {
    const s = await store();
    expect(s.sqlite.query("PRAGMA synchronous").get()).toEqual({ synchronous: 2 });
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

  test("upgrading DKIM keys made before two-phase rotation: the signing key still signs, a retired one was retired when the next was made", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mailferry-store-"));
    dirs.push(dir);
    const path = join(dir, "old.db");
    const { Database } = await import("bun:sqlite");
    const { Kysely, SqliteDialect } = await import("kysely");
    const { Migrator } = await import("kysely/migration");
    const raw = new Database(path, { create: true, strict: true });
    const old = new Kysely<unknown>({ dialect: new SqliteDialect({ database: adapt(raw) }) });
    const before011 = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < "011"));
    expect((await new Migrator({ db: old, provider: { getMigrations: async () => before011 } }).migrateToLatest()).error).toBeUndefined();
    raw.run("INSERT INTO domains (name, created_at, updated_at) VALUES ('keys.test', 1, 1)");
    raw.run(`INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key, public_key, retired, created_at) VALUES
      (1, 'first', 'rsa', 'k1', 'p1', 1, 1000), (1, 'second', 'rsa', 'k2', 'p2', 1, 5000), (1, 'third', 'rsa', 'k3', 'p3', 0, 9000)`);
    await old.destroy();

    const s = await store(path);
    expect(s.sqlite.query("SELECT selector, activated_at, retired_at FROM dkim_keys ORDER BY id").all()).toEqual([
      { selector: "first", activated_at: 1000, retired_at: 5000 },
      { selector: "second", activated_at: 5000, retired_at: 9000 },
      { selector: "third", activated_at: 9000, retired_at: null },
    ]);
    expect(await signingKey(s.db, "keys.test")).toMatchObject({ selector: "third", privateKey: "k3" });
  });

  test("parseDomainName is the one validation used by every caller", () => {
    expect(parseDomainName(" Mail.Example.org ")).toBe("mail.example.org");
    expect(() => parseDomainName("localhost")).toThrow(UserError);
  });
});

// A data event accepted counts as "forwarded" in the daily stats, one refused at RCPT as "rejected".
const event = (session: string, stage: "data" | "rcpt" = "data", domain = "a.test"): NewEvent => ({
  at: Date.UTC(2026, 10, 25, 12),
  session_id: session,
  remote_ip: "192.0.2.1",
  stage,
  code: stage === "data" ? 250 : 550,
  enhanced: stage === "data" ? "2.0.0" : "5.1.1",
  text: "x",
  mail_from: null,
  recipients: null,
  domain,
  message_id: null,
  subject: null,
  headers: null,
  detail: null,
});
const sessions = async (s: Store) => (await listEvents(s.db, { limit: 1000 })).map((e) => e.session_id).reverse();
const stats = (s: Store) => s.db.selectFrom("daily_stats").select(["domain", "category", "count"]).orderBy("domain").orderBy("category").execute();

describe("events", () => {
  test("events recorded in one event-loop turn are written in one transaction, in order, with their daily counts", async () => {
    const s = await store();
    const recorder = createEventRecorder(s.db);
    const statements = spyOn(s.sqlite, "query");
    const sent = Array.from({ length: 100 }, (_, i) => event(`s${i}`, i % 2 ? "data" : "rcpt", i % 4 < 2 ? "a.test" : "b.test"));
    // Another connection (the CLI, the web UI) sees every event of the batch once its caller is told.
    const other = new Database(s.path, { readonly: true });
    const seenByFirstCaller = recorder.record(sent[0]!).then(() => other.query("SELECT count(*) AS n FROM events").get());
    await Promise.all(sent.slice(1).map((e) => recorder.record(e)));
    expect(await seenByFirstCaller).toEqual({ n: 100 });
    other.close();
    expect(statements.mock.calls.filter(([sql]) => sql === "begin")).toHaveLength(1);
    expect(await sessions(s)).toEqual(sent.map((e) => e.session_id));
    expect(await stats(s)).toEqual([
      { domain: "a.test", category: "forwarded", count: 25 },
      { domain: "a.test", category: "rejected", count: 25 },
      { domain: "b.test", category: "forwarded", count: 25 },
      { domain: "b.test", category: "rejected", count: 25 },
    ]);
    // The next turn is the next transaction, after the first.
    await Promise.all([recorder.record(event("t1")), recorder.record(event("t2"))]);
    expect(statements.mock.calls.filter(([sql]) => sql === "begin")).toHaveLength(2);
    expect((await sessions(s)).slice(-3)).toEqual(["s99", "t1", "t2"]);
  });
});

describe("delivered marks", () => {
  test("marks made in one event-loop turn commit in one statement (markDelivered: it waits for the disk); each caller is told once another connection sees them", async () => {
    const s = await store();
    for (const fp of ["fp1", "fp2", "fp3"]) await touchFingerprint(s.db, fp);
    const markDelivered = createDeliveredMarks(s.db);
    const statements = spyOn(s.sqlite, "query");
    const other = new Database(s.path, { readonly: true });
    const seenByFirstCaller = markDelivered("fp1", "a@x.test").then(() => other.query("SELECT count(*) AS n FROM delivered").get());
    await Promise.all([markDelivered("fp1", "b@x.test"), markDelivered("fp2", "a@x.test")]);
    expect(await seenByFirstCaller).toEqual({ n: 3 });
    other.close();
    const inserts = () => statements.mock.calls.filter(([sql]) => sql.startsWith('insert into "delivered"')).length;
    expect(inserts()).toBe(1);
    expect((await touchFingerprint(s.db, "fp1")).delivered).toEqual(new Set(["a@x.test", "b@x.test"]));
    // The next turn is the next statement.
    await markDelivered("fp3", "a@x.test");
    expect(inserts()).toBe(2);
    expect((await touchFingerprint(s.db, "fp3")).delivered).toEqual(new Set(["a@x.test"]));
  });

  test("a batch that cannot commit fails every mark in it, and the next turn's marks commit", async () => {
    const s = await store();
    await touchFingerprint(s.db, "fp1");
    const markDelivered = createDeliveredMarks(s.db);
    // A mark of a fingerprint never seen breaks the foreign key: the whole transaction rolls back.
    const settled = await Promise.allSettled([markDelivered("fp1", "a@x.test"), markDelivered("unseen", "b@x.test")]);
    expect(settled.map((s) => s.status === "rejected" && String(s.reason))).toEqual(["SQLiteError: FOREIGN KEY constraint failed", "SQLiteError: FOREIGN KEY constraint failed"]);
    expect((await touchFingerprint(s.db, "fp1")).delivered).toEqual(new Set());
    await markDelivered("fp1", "a@x.test");
    expect((await touchFingerprint(s.db, "fp1")).delivered).toEqual(new Set(["a@x.test"]));
  });
});

describe.each(DIALECTS)("the store on %s", (dialect) => {
  const store = (location?: string) => openIn(dialect, location);

  test("migrations are applied once and recorded; reopening is a no-op", async () => {
    const s = await store();
    expect(await appliedNames(s)).toEqual(Object.keys(migrations));
    const tables = (await s.db.introspection.getTables()).map((t) => t.name);
    for (const t of ["domains", "aliases", "settings", "events"]) expect(tables).toContain(t);
    await addDomain(s.db, "kept.test");
    await s.close();
    open.pop();
    const again = await store(s.path);
    expect((await listDomains(again.db)).map((d) => d.name)).toEqual(["kept.test"]);
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

  test("recorded and listed newest first; header blocks are capped", async () => {
    const s = await store();
    const base = { session_id: "s1", remote_ip: "127.0.0.1", enhanced: "2.0.0", text: "ok", mail_from: null, recipients: null, domain: null, message_id: null, subject: null, detail: null };
    await writeEvents(s.db, [
      { ...base, at: 1, stage: "mail", code: 250, headers: null },
      { ...base, at: 2, stage: "data", code: 451, headers: "X: " + "y".repeat(MAX_STORED_HEADERS * 2) },
    ]);
    const events = await listEvents(s.db, { sessionId: "s1" });
    expect(events.map((e) => e.stage)).toEqual(["data", "mail"]);
    expect(events[0]!.headers!.length).toBe(MAX_STORED_HEADERS);
    expect((await listEvents(s.db, { stage: "mail" })).length).toBe(1);
  });

  test("searches ignore case on both: the mail log by sender, aliases by name", async () => {
    const s = await store();
    await writeEvents(s.db, [{ ...event("m1"), mail_from: "Alice@Sender.test" }]);
    expect((await listEvents(s.db, { sender: "alice@sender" })).map((e) => e.session_id)).toEqual(["m1"]);
    await addDomain(s.db, "one.test");
    await addAlias(s.db, "one.test", { matcher: "exact", pattern: "sales", recipients: ["me@x.test"], description: "Shop Orders" });
    expect((await searchAliases(s.db, { q: "shop orders", page: 1, perPage: 10 })).total).toBe(1);
  });

  test("an event that cannot be written rejects its caller only: the rest of its batch and later batches are stored", async () => {
    const s = await store();
    const recorder = createEventRecorder(s.db);
    const bad = { ...event("bad"), session_id: null as unknown as string };
    const batch = [recorder.record(event("a")), recorder.record(bad), recorder.record(event("b"))];
    // Queued while the first batch is being written: the next batch.
    const later = new Promise((resolve) => setImmediate(resolve)).then(() => recorder.record(event("c")));
    const results = await Promise.allSettled([...batch, later]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled"]);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/NOT NULL constraint failed: events\.session_id|null value in column "session_id" of relation "events" violates not-null constraint/);
    expect(await sessions(s)).toEqual(["a", "b", "c"]);
    expect(await stats(s)).toEqual([{ domain: "a.test", category: "forwarded", count: 3 }]);
  });

  test("flush writes the queued events at once, so closing the database right after loses none", async () => {
    const s = await store();
    const recorder = createEventRecorder(s.db);
    const recorded = recorder.record(event("last"));
    await recorder.flush();
    await s.close();
    await recorded;
    expect(await sessions(await store(s.path))).toEqual(["last"]);
  });

  // What a write sees of its commit's durability, recorded by a trigger inside it: SQLite's
  // synchronous level (it cannot change inside a transaction, so it is the commit's) or
  // PostgreSQL's synchronous_commit.
  async function probeDurability(s: Store, tables: string[]): Promise<() => Promise<{ table: string; level: string }[]>> {
    const level = dialect === "sqlite" ? "(SELECT synchronous FROM pragma_synchronous)" : "current_setting('synchronous_commit')";
    await ddl(s.db, "CREATE TABLE durability_probe (id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, level TEXT NOT NULL)");
    for (const table of tables) {
      await ddl(s.db, `CREATE TRIGGER probe_${table} AFTER INSERT ON ${table} BEGIN INSERT INTO durability_probe (tbl, level) VALUES ('${table}', ${level}); END`);
    }
    return async () => (await sql<{ table: string; level: string }>`SELECT tbl AS "table", level FROM durability_probe ORDER BY id`.execute(s.db)).rows;
  }
  const [NOT_WAITING, WAITING] = dialect === "sqlite" ? ["1", "2"] : ["off", "on"];
  const sqliteSynchronous = (s: Store) => s.sqlite?.query("PRAGMA synchronous").get();

  test("the mail log, catch-all counts and first sightings commit without waiting for the disk; delivered marks and the outbox racing them still wait", async () => {
    const s = await store();
    const probed = await probeDurability(s, ["events", "catchall_names", "fingerprints", "delivered", "outbox"]);
    const recorder = createEventRecorder(s.db);
    const writes: Promise<unknown>[] = [];
    for (let turn = 0; turn < 5; turn++) {
      for (let i = 0; i < 3; i++) writes.push(recorder.record(event(`s${turn}.${i}`)));
      writes.push(touchFingerprint(s.db, `fp${turn}`).then(() => markDelivered(s.db, [{ fingerprint: `fp${turn}`, target: "a@x.test", at: turn }, { fingerprint: `fp${turn}`, target: "b@x.test", at: turn }])), countVerdict(s.db, { domain: "c.test", name: `n${turn}` }, "good", turn));
      writes.push(enqueue(s.db, { from: "", to: ["a@x.test"], raw: Buffer.from("x") }));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(writes);
    const rows = await probed();
    expect(rows.filter((r) => r.table === "events")).toHaveLength(15);
    expect(rows.filter((r) => r.table === "delivered")).toHaveLength(10);
    for (const row of rows) expect(row).toEqual({ table: row.table, level: ["events", "catchall_names", "fingerprints"].includes(row.table) ? NOT_WAITING : WAITING });
    // They raced: delivered marks were written between log batches.
    const order = rows.map((r) => r.table);
    expect(order.indexOf("delivered")).toBeLessThan(order.lastIndexOf("events"));
    if (s.sqlite) expect(sqliteSynchronous(s)).toEqual({ synchronous: 2 });
  });

  test("after a log batch that fails, the connection waits for the disk again", async () => {
    const s = await store();
    const probed = await probeDurability(s, ["events", "delivered"]);
    const recorder = createEventRecorder(s.db);
    const bad = { ...event("bad"), session_id: null as unknown as string };
    // The batch fails; each event is then written alone, and the bad one fails again.
    const [good, failed] = [recorder.record(event("good")), recorder.record(bad)];
    await recorder.flush();
    await good;
    await expect(failed).rejects.toThrow(/session_id/);
    if (s.sqlite) expect(sqliteSynchronous(s)).toEqual({ synchronous: 2 });
    await touchFingerprint(s.db, "fp");
    await markDelivered(s.db, [{ fingerprint: "fp", target: "a@x.test", at: 1 }]);
    expect(await probed()).toEqual([
      { table: "events", level: NOT_WAITING },
      { table: "delivered", level: WAITING },
    ]);
  });

  test("each call binds its own values: fingerprints, delivered targets, signing keys, vacations, version counters", async () => {
    const s = await store();
    expect(await touchFingerprint(s.db, "fp1", 1000)).toEqual({ firstSeen: 1000, delivered: new Set() });
    expect(await touchFingerprint(s.db, "fp2", 1500)).toEqual({ firstSeen: 1500, delivered: new Set() });
    await markDelivered(s.db, [{ fingerprint: "fp1", target: "a@x.test", at: 1001 }]);
    await markDelivered(s.db, [{ fingerprint: "fp1", target: "a@x.test", at: 1002 }]);
    await markDelivered(s.db, [{ fingerprint: "fp2", target: "b@x.test", at: 1501 }]);
    expect(await touchFingerprint(s.db, "fp1", 2000)).toEqual({ firstSeen: 1000, delivered: new Set(["a@x.test"]) });
    expect(await touchFingerprint(s.db, "fp2", 2500)).toEqual({ firstSeen: 1500, delivered: new Set(["b@x.test"]) });
    expect(await s.db.selectFrom("fingerprints").select(["id", "first_seen", "last_seen"]).orderBy("id").execute()).toEqual([
      { id: "fp1", first_seen: 1000, last_seen: 2000 },
      { id: "fp2", first_seen: 1500, last_seen: 2500 },
    ]);
    expect(await s.db.selectFrom("delivered").select(["fingerprint", "target", "at"]).orderBy("fingerprint").execute()).toEqual([
      { fingerprint: "fp1", target: "a@x.test", at: 1001 },
      { fingerprint: "fp2", target: "b@x.test", at: 1501 },
    ]);

    const routing = await versionCounter(s.db, "routing_version");
    await addDomain(s.db, "one.test", { selector: "first" });
    await addDomain(s.db, "two.test", { selector: "second" });
    expect(await versionCounter(s.db, "routing_version")).not.toBe(routing);
    expect(await signingKey(s.db, "one.test")).toMatchObject({ domain: "one.test", selector: "first" });
    expect(await signingKey(s.db, "two.test")).toMatchObject({ domain: "two.test", selector: "second" });
    // A rotated key is pending: the old one signs until the new one is activated.
    await rotateDkimKey(s.db, "one.test", "newer");
    expect(await signingKey(s.db, "one.test")).toMatchObject({ domain: "one.test", selector: "first" });
    await activatePendingKey(s.db, "one.test");
    expect(await signingKey(s.db, "one.test")).toMatchObject({ domain: "one.test", selector: "newer" });
    expect(await signingKey(s.db, "none.test")).toBeNull();
    const hello = await addAlias(s.db, "one.test", { matcher: "exact", pattern: "hello", recipients: ["me@x.test"] });
    const bye = await addAlias(s.db, "one.test", { matcher: "exact", pattern: "bye", recipients: ["me@x.test"] });
    await setVacation(s.db, "one.test", "hello", { subject: "Away", message: "Back soon" });
    expect(await vacationOf(s.db, hello.id)).toMatchObject({ alias_id: hello.id, subject: "Away" });
    expect(await vacationOf(s.db, bye.id)).toBeUndefined();
  });

  test("marks of a message to more targets than one statement takes are all written", async () => {
    const s = await store();
    await touchFingerprint(s.db, "many");
    await markDelivered(s.db, Array.from({ length: 1201 }, (_, i) => ({ fingerprint: "many", target: `t${i}@x.test`, at: i })));
    expect((await touchFingerprint(s.db, "many")).delivered.size).toBe(1201);
  });

  test("a statement that computes with one of its values is refused: the result would be compiled in for good", async () => {
    const s = await store();
    const stale = hotStatement((db, v: { now: number }) => db.selectFrom("fingerprints").select("id").where("last_seen", "<", v.now - 1000));
    await expect(stale(s.db, { now: Date.now() })).rejects.toThrow('hot statement value "now" must be used as it is');
  });

  test("the queries spelled per dialect: housekeeping in batches, JSON in the audit log, counting an attempt back", async () => {
    const s = await store();
    const now = Date.UTC(2026, 11, 1);
    for (let i = 0; i < 7; i++) await touchFingerprint(s.db, `old${i}`, now - 8 * 86_400_000);
    await touchFingerprint(s.db, "fresh", now);
    expect(await housekeeping(s.db, { now, eventRetentionMs: 86_400_000, batch: 3 })).toMatchObject({ fingerprints: 7 });
    expect((await s.db.selectFrom("fingerprints").select("id").execute()).map((r) => r.id)).toEqual(["fresh"]);

    const actor = { name: "cli", ip: "local", confirmsDestinations: true };
    await audit(s.db, actor, "alias.test_message", "a@x.test", null, { delivered: 0 });
    expect(await anyTestMessageDelivered(s.db)).toBe(false);
    await audit(s.db, actor, "alias.test_message", "a@x.test", null, { delivered: 2 });
    expect(await anyTestMessageDelivered(s.db)).toBe(true);

    expect((await reserveAttempt(s.db, "k", now)).count).toBe(1);
    await releaseAttempt(s.db, "k");
    await releaseAttempt(s.db, "k");
    expect((await reserveAttempt(s.db, "k", now)).count).toBe(1);
  });

  test("counters that add to the stored row on conflict: catch-all verdicts, rate windows", async () => {
    const s = await store();
    const key = { domain: "c.test", name: "shop" };
    await countVerdict(s.db, key, "spam", 1000);
    await countVerdict(s.db, key, "spam", 2000);
    expect(await countVerdict(s.db, key, "good", 3000)).toMatchObject({ spam: 2, good: 1, last_seen: 3000 });
    expect(await bumpCounter(s.db, "rate_counts", "sender", 60_000, 1000)).toBe(1);
    expect(await bumpCounter(s.db, "rate_counts", "sender", 60_000, 2000, 2)).toBe(3);
    expect(await bumpCounter(s.db, "rate_counts", "sender", 60_000, 70_000)).toBe(1);
  });

  test("the outbox keeps a message's bytes and millisecond times exactly", async () => {
    const s = await store();
    const raw = Buffer.from("Subject: caf\xe9\r\n\r\n\x00\xff body\r\n", "latin1");
    const now = Date.UTC(2026, 11, 1, 12, 0, 0, 123);
    const id = await enqueue(s.db, { from: "me@x.test", to: ["you@y.test"], raw }, now);
    const row = await s.db.selectFrom("outbox").select(["raw", "next_attempt", "created_at"]).where("id", "=", id).executeTakeFirstOrThrow();
    expect(Buffer.from(row.raw).equals(raw)).toBe(true);
    expect(row).toMatchObject({ next_attempt: now, created_at: now });
  });
});

describe("PostgreSQL with several nodes", () => {
  test("nodes starting together migrate once: the others wait on the advisory lock, then find nothing pending", async () => {
    const url = await postgres!.createDatabase();
    const nodes = await Promise.all([openDatabase(url), openDatabase(url), openDatabase(url)]);
    open.push(...nodes);
    for (const node of nodes) expect(await appliedNames(node)).toEqual(Object.keys(migrations));
    // One migration run: one routing counter row, not one per node.
    const counters = await nodes[0]!.db.selectFrom("settings").select("key").where("key", "=", "routing_version").execute();
    expect(counters).toHaveLength(1);
    // The triggers that keep the caches' counters run there too: a change on one node moves the counter all see.
    const before = await versionCounter(nodes[1]!.db, "routing_version");
    await addDomain(nodes[0]!.db, "shared.test");
    expect(await versionCounter(nodes[2]!.db, "routing_version")).not.toBe(before);
    expect((await listDomains(nodes[2]!.db)).map((d) => d.name)).toEqual(["shared.test"]);
  });

  test("a due message is taken by exactly one of several nodes claiming it at once", async () => {
    const url = await postgres!.createDatabase();
    const nodes = [await openDatabase(url), await openDatabase(url)];
    open.push(...nodes);
    const id = await enqueue(nodes[0]!.db, { from: "", to: ["a@dest.test"], raw: Buffer.from("x") }, 1_000);
    const [entry] = await dueOutbox(nodes[0]!.db, 2_000);
    const claims = await Promise.all([...nodes, ...nodes].map((node) => claimDue(node.db, entry!, 900_000)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    // Taken: no node finds it due until the claim runs out.
    expect(await dueOutbox(nodes[1]!.db, 2_000)).toEqual([]);
    expect((await dueOutbox(nodes[1]!.db, 900_000)).map((e) => e.id)).toEqual([id]);
  });

  test("each background job runs on one node; when that node stops, another takes it at its next poll", async () => {
    const url = await postgres!.createDatabase();
    const nodes = [await openDatabase(url), await openDatabase(url)];
    open.push(...nodes);
    const logger = createLogger({ level: "error", format: "json", write: () => {} });
    const [first, second] = nodes.map((node) => createJobLocks(node.db, logger));
    await first!.start();
    await second!.start();
    try {
      expect(JOB_KINDS.map((kind) => [first!.holds(kind), second!.holds(kind)])).toEqual(JOB_KINDS.map(() => [true, false]));
      await first!.stop();
      await Bun.sleep(JOB_LOCK_POLL_MS + 500);
      expect(JOB_KINDS.map((kind) => [first!.holds(kind), second!.holds(kind)])).toEqual(JOB_KINDS.map(() => [false, true]));
    } finally {
      await second!.stop();
    }
  });
});

test("on SQLite the one server holds every background-job lock", async () => {
  const locks = createJobLocks((await store()).db, createLogger({ level: "error", format: "json", write: () => {} }));
  await locks.start();
  expect(JOB_KINDS.every((kind) => locks.holds(kind))).toBe(true);
});
