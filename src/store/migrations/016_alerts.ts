import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * One row per alert (docs/operations.md, "Alerts"): while it lasts
 * (resolved_at null) it is repeated at most daily; once resolved the row stays
 * for the list until the same alert starts again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE alerts (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    detail TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    last_sent_at INTEGER NOT NULL,
    resolved_at INTEGER
  )`);
}
