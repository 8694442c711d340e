import { type Kysely, sql } from "kysely";

/**
 * A version counter for the allow- and denylist, bumped by triggers on any
 * change from any connection (server, CLI, API), so the SMTP hot path can keep
 * both lists in memory and reload them only when they change.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`INSERT INTO settings (key, value, updated_at) VALUES ('sender_lists_version', '0', 0)`.execute(db);
  for (const table of ["allowlist", "denylist"]) {
    for (const op of ["INSERT", "UPDATE", "DELETE"]) {
      await sql
        .raw(
          `CREATE TRIGGER ${table}_${op.toLowerCase()}_sender_lists AFTER ${op} ON ${table} BEGIN
             UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'sender_lists_version';
           END`,
        )
        .execute(db);
    }
  }
}
