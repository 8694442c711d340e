import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";
import { createVersionCounter } from "./version-counter.ts";

/**
 * Settings changed at run time that every node shares (docs/multi-node.md):
 * on PostgreSQL the settings page, the API and `config set` keep them here
 * instead of one node's config.toml, and each node polls the version counter
 * to apply them. Created on SQLite too, so both dialects run the same
 * migrations and have the same schema; one SQLite server keeps using config.toml.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE shared_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  )`);
  await createVersionCounter(db, "shared_settings_version", "shared_settings", ["shared_settings"]);
}
