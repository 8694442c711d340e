// Which schema a database has (the kysely migrations applied to it) against
// the migrations this binary carries: newer means refuse, older means migrate.
import type { Database } from "bun:sqlite";
import { type Kysely, sql } from "kysely";
import { VERSION } from "../version.ts";
import { migrations } from "./migrations/index.ts";

const MIGRATION_TABLE = "kysely_migration";

export interface SchemaStatus {
  /** Latest applied migration name, or null for a fresh database. */
  version: string | null;
  applied: string[];
  /** Applied by a newer mailferry: this binary does not know them. */
  unknown: string[];
  /** Known here, not applied yet (an upgrade). */
  pending: string[];
}

export function appliedMigrations(sqlite: Database): string[] {
  if (!sqlite.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(MIGRATION_TABLE)) return [];
  return (sqlite.query(`SELECT name FROM ${MIGRATION_TABLE} ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
}

/** The same through kysely, before migrating (PostgreSQL: its information schema). */
export async function appliedMigrationsIn(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ n: number }>`SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ${MIGRATION_TABLE} AND table_schema = current_schema()`.execute(db);
  if (Number(rows[0]?.n) === 0) return [];
  return (await sql<{ name: string }>`SELECT name FROM ${sql.table(MIGRATION_TABLE)} ORDER BY name`.execute(db)).rows.map((r) => r.name);
}

export function schemaStatus(applied: string[], known: string[] = Object.keys(migrations)): SchemaStatus {
  const sorted = [...applied].sort();
  return {
    version: sorted.at(-1) ?? null,
    applied: sorted,
    unknown: sorted.filter((name) => !known.includes(name)),
    pending: known.filter((name) => !applied.includes(name)),
  };
}

/** The refusal when `status` has migrations this binary does not know, else null. */
export function newerSchemaMessage(status: SchemaStatus): string | null {
  const newest = status.unknown.at(-1);
  return newest ? `database schema ${newest} is newer than this mailferry ${VERSION} knows; upgrade mailferry or restore a backup` : null;
}
