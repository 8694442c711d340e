// The store: SQLite through Kysely on bun:sqlite (the default, a file in the
// data dir; WAL mode lets the CLI and a backup snapshot read and write while
// the server runs), or PostgreSQL when [database] url is set (docs/operations.md,
// "PostgreSQL"). The same queries and migrations serve both (src/store/dialect.ts).
import { Database } from "bun:sqlite";
import { dirname, join } from "node:path";
import { type Compilable, type CompiledQuery, Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase, sql } from "kysely";
import { Migrator } from "kysely/migration";
import { migrations } from "./migrations/index.ts";
import type { Schema } from "./schema.ts";
import { restrictToOwner } from "./data-dir.ts";
import { dialectOf, type Dialect } from "./dialect.ts";
import { pgDump, pgTool } from "./pg-dump.ts";
import { bunSqlPool, withoutPassword } from "./postgres.ts";
import { backupsDir, fileTimestamp, vacuumInto } from "./snapshot.ts";
import { appliedMigrations, appliedMigrationsIn, newerSchemaMessage, schemaStatus } from "./versions.ts";

export type DB = Kysely<Schema>;

export interface SqliteStore {
  db: DB;
  /** The underlying handle, for pragmas and health checks. */
  sqlite: Database;
  /** The database file. */
  path: string;
  close(): Promise<void>;
}

export interface PostgresStore {
  db: DB;
  sqlite: null;
  /** The server and database, without the password. */
  path: string;
  close(): Promise<void>;
}

export type Store = SqliteStore | PostgresStore;

export const DATABASE_FILE = "mailferry.db";

/** Connections a node keeps to PostgreSQL: the SMTP sessions, the queue and the web UI share them. */
const POSTGRES_CONNECTIONS = 10;

/** Where the configured database is: [database] url, else the SQLite file in the data dir. */
export function databaseLocation(config: { dataDir: string; database: { url: string | null } }): string {
  return config.database.url ?? join(config.dataDir, DATABASE_FILE);
}

const isPostgresUrl = (location: string) => /^postgres(ql)?:\/\//i.test(location);

/** Opens (and migrates) the database at `location`: a postgres:// URL or a SQLite file path. */
export function openDatabase(location: string, options: OpenOptions = {}): Promise<Store> {
  return isPostgresUrl(location) ? openPostgresStore(location, options) : openStore(location, options);
}

export interface OpenOptions {
  /** Told where the database was copied before pending migrations ran on it (an upgrade). */
  onPreMigrationBackup?: (file: string, pending: string[]) => void;
  /** PostgreSQL: the node's data dir, whose backups/ gets the pre-migration pg_dump. */
  dataDir?: string;
  /** PostgreSQL: told why no copy was made before migrating (no pg_dump on PATH, or it failed). */
  onNoPreMigrationBackup?: (reason: string, pending: string[]) => void;
}

export async function openStore(path: string, options: OpenOptions = {}): Promise<SqliteStore> {
  const sqlite = new Database(path, { create: true, strict: true });
  // It holds the DKIM private keys; SQLite gives -wal and -shm the database file's mode when it makes them.
  for (const file of [path, `${path}-wal`, `${path}-shm`]) restrictToOwner(file);
  sqlite.run("PRAGMA busy_timeout = 5000");
  try {
    const schema = schemaStatus(appliedMigrations(sqlite));
    // Before anything is written: an older binary must not touch a newer schema.
    const newer = newerSchemaMessage(schema);
    if (newer) throw new Error(newer);
    if (schema.pending.length > 0 && schema.applied.length > 0) {
      // An upgrade: keep the database as the previous version left it, in case a migration goes wrong.
      const file = join(backupsDir(dirname(path)), `pre-migrate-${fileTimestamp()}.db`);
      vacuumInto(sqlite, file);
      options.onPreMigrationBackup?.(file, schema.pending);
    }
  } catch (err) {
    sqlite.close();
    throw err;
  }
  // WAL: readers never block the writer. FULL sync: a commit is on disk before
  // the SMTP answer that relies on it. NORMAL survives an application crash but a
  // power cut may lose the last commits, and here those are the fingerprints of
  // delivered targets (lost: a retry delivers again) and the outbox of DSNs and
  // vacation replies (lost: never sent). SQLite syncs per connection, not per table.
  // The exception is what no answer relies on, the mail log, the catch-all
  // counts and a message's first sighting (its fingerprint row: the delivered
  // marks that matter are FULL commits, whose sync covers it): they switch the
  // connection to NORMAL for their own transaction (commitWithoutWaitingForDisk,
  // dialect.ts), so a power cut may lose the last log lines, never mail.
  sqlite.run("PRAGMA journal_mode = WAL");
  sqlite.run("PRAGMA synchronous = FULL");
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: adapt(sqlite) }) });
  try {
    // Foreign keys stay off while migrating: a table rebuild drops the old table,
    // which would otherwise cascade into the rows that reference it.
    sqlite.run("PRAGMA foreign_keys = OFF");
    await migrate(db);
    const broken = sqlite.query("PRAGMA foreign_key_check").all();
    if (broken.length > 0) throw new Error(`database migration left ${broken.length} broken references: ${JSON.stringify(broken.slice(0, 3))}`);
    sqlite.run("PRAGMA foreign_keys = ON");
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return { db, sqlite, path, close: () => db.destroy() };
}

/**
 * PostgreSQL: kysely's migrator holds pg_advisory_lock while it migrates, in
 * one transaction, so of several nodes starting at once one migrates and the
 * others wait, then find nothing pending. Backups are PostgreSQL's own (pg_dump),
 * also the copy taken before an upgrade migrates (src/store/pg-dump.ts).
 */
async function openPostgresStore(url: string, options: OpenOptions): Promise<PostgresStore> {
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: bunSqlPool(url, POSTGRES_CONNECTIONS) }) });
  try {
    const schema = schemaStatus(await postgresMigrationsIn(db, url));
    const newer = newerSchemaMessage(schema);
    if (newer) throw new Error(newer);
    if (schema.pending.length > 0 && schema.applied.length > 0) await dumpBeforeMigrating(url, schema.pending, options);
    await migrate(db);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return { db, sqlite: null, path: withoutPassword(url), close: () => db.destroy() };
}

/** An upgrade on PostgreSQL: a pg_dump into the data dir's backups/ when pg_dump is there; else the log says why there is none. */
async function dumpBeforeMigrating(url: string, pending: string[], options: OpenOptions): Promise<void> {
  if (!options.dataDir) return;
  if (!pgTool("pg_dump")) return options.onNoPreMigrationBackup?.("pg_dump is not on PATH", pending);
  const file = join(backupsDir(options.dataDir), `pre-migrate-${fileTimestamp()}.pgdump`);
  try {
    await pgDump(url, file);
  } catch (err) {
    return options.onNoPreMigrationBackup?.((err as Error).message, pending);
  }
  options.onPreMigrationBackup?.(file, pending);
}

/** The migrations applied to the PostgreSQL database at `url`, read on one connection without migrating (doctor). */
export async function postgresMigrations(url: string): Promise<string[]> {
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: bunSqlPool(url, 1) }) });
  try {
    return await postgresMigrationsIn(db, url);
  } finally {
    await db.destroy();
  }
}

/** A failure to connect names the server and database, never the password (not even when the driver echoes it). */
function postgresMigrationsIn(db: DB, url: string): Promise<string[]> {
  return appliedMigrationsIn(db).catch((err: Error & { code?: string }) => {
    const password = decodeURIComponent(new URL(url).password);
    const reason = password ? err.message.replaceAll(password, "***") : err.message;
    throw new Error(`cannot use the PostgreSQL database ${withoutPassword(url)} ([database] url): ${reason}${err.code ? ` (${err.code})` : ""}`);
  });
}

async function migrate(db: Kysely<Schema>): Promise<void> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`database migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Kysely's SqliteDialect speaks better-sqlite3's interface; bun:sqlite differs only in argument spreading. */
export function adapt(sqlite: Database): SqliteDatabase {
  return {
    close: () => sqlite.close(),
    prepare(sql) {
      const stmt = sqlite.query(sql); // cached per SQL text
      return {
        reader: stmt.columnNames.length > 0,
        all: (params) => stmt.all(...(params as never[])),
        run: (params) => stmt.run(...(params as never[])),
        iterate: (params) => stmt.iterate(...(params as never[])),
      };
    },
  };
}

/** Stands in for a named value while a hot statement is compiled. */
class Slot {
  constructor(readonly name: string) {}
  // Computing with a stand-in would compile its result into the statement for good.
  [Symbol.toPrimitive](): never {
    throw new Error(`hot statement value "${this.name}" must be used as it is`);
  }
}

/**
 * A statement on the per-message path, built and compiled by kysely once (the
 * SQL is the same for every database of a dialect): building a query costs
 * several times the CPU SQLite takes to run it. `build` gets stand-ins for
 * `values` and must put each into the query as it is (no arithmetic on them);
 * each call binds the real values by name. It runs like any kysely query (on a
 * transaction too), so it waits its turn on the one connection.
 */
export function hotStatement<V extends Record<string, unknown>, R>(build: (db: DB, values: V) => Compilable<R>): (db: DB, values: V) => Promise<R[]> {
  // Once per dialect: a process may hold a SQLite and a PostgreSQL store (the tests, a migration between them).
  const compiledFor: Partial<Record<Dialect, CompiledQuery<R>>> = {};
  return async (db, values) => {
    const compiled = (compiledFor[dialectOf(db)] ??= build(db, new Proxy({} as V, { get: (_, name) => new Slot(String(name)) })).compile());
    // An unset (optional) value binds NULL.
    const parameters = compiled.parameters.map((p) => (p instanceof Slot ? (values[p.name] ?? null) : p));
    return (await db.executeQuery<R>({ ...compiled, parameters })).rows;
  };
}

/** True when the database answers a trivial query (for /healthz). */
export async function isHealthy(store: Store): Promise<boolean> {
  try {
    if (store.sqlite) return store.sqlite.query("SELECT 1 AS ok").get() !== null;
    return (await sql`SELECT 1 AS ok`.execute(store.db)).rows.length === 1;
  } catch {
    return false;
  }
}
