// SQLite through Kysely on bun:sqlite. WAL mode lets the CLI and a backup
// snapshot read and write while the server runs.
import { Database } from "bun:sqlite";
import { dirname, join } from "node:path";
import { type Compilable, type CompiledQuery, Kysely, SqliteDialect, type SqliteDatabase } from "kysely";
import { Migrator } from "kysely/migration";
import { migrations } from "./migrations/index.ts";
import type { Schema } from "./schema.ts";
import { restrictToOwner } from "./data-dir.ts";
import { backupsDir, fileTimestamp, vacuumInto } from "./snapshot.ts";
import { appliedMigrations, newerSchemaMessage, schemaStatus } from "./versions.ts";

export type DB = Kysely<Schema>;

export interface Store {
  db: DB;
  /** The underlying handle, for pragmas and health checks. */
  sqlite: Database;
  path: string;
  close(): Promise<void>;
}

export const DATABASE_FILE = "mailferry.db";

export interface OpenOptions {
  /** Told where the database was copied before pending migrations ran on it (an upgrade). */
  onPreMigrationBackup?: (file: string, pending: string[]) => void;
}

export async function openStore(path: string, options: OpenOptions = {}): Promise<Store> {
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
 * SQL is the same for every database: all are SQLite): building a query costs
 * several times the CPU SQLite takes to run it. `build` gets stand-ins for
 * `values` and must put each into the query as it is (no arithmetic on them);
 * each call binds the real values by name. It runs like any kysely query (on a
 * transaction too), so it waits its turn on the one connection.
 */
export function hotStatement<V extends Record<string, unknown>, R>(build: (db: DB, values: V) => Compilable<R>): (db: DB, values: V) => Promise<R[]> {
  let compiled: CompiledQuery<R> | undefined;
  return async (db, values) => {
    compiled ??= build(db, new Proxy({} as V, { get: (_, name) => new Slot(String(name)) })).compile();
    // An unset (optional) value binds NULL.
    const parameters = compiled.parameters.map((p) => (p instanceof Slot ? (values[p.name] ?? null) : p));
    return (await db.executeQuery<R>({ ...compiled, parameters })).rows;
  };
}

/** True when the database answers a trivial query (for /healthz). */
export function isHealthy(store: Store): boolean {
  try {
    return store.sqlite.query("SELECT 1 AS ok").get() !== null;
  } catch {
    return false;
  }
}
