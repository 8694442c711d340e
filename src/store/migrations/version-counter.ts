import { type Kysely, sql } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * A counter in `settings` that triggers bump on any change to the tables, from
 * any connection, so a cache in the server can watch one cheap value.
 * Migrations call this; the SQL it makes must stay the same (on PostgreSQL
 * src/store/dialect.ts turns each trigger into a function and a trigger).
 */
export async function createVersionCounter(db: Kysely<unknown>, key: string, suffix: string, tables: string[]): Promise<void> {
  await sql`INSERT INTO settings (key, value, updated_at) VALUES (${key}, '0', 0)`.execute(db);
  for (const table of tables) {
    for (const op of ["INSERT", "UPDATE", "DELETE"]) {
      await ddl(
        db,
        `CREATE TRIGGER ${table}_${op.toLowerCase()}_${suffix} AFTER ${op} ON ${table} BEGIN
             UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = '${key}';
           END`,
      );
    }
  }
}
