import { type Kysely, sql } from "kysely";

/**
 * Why each mail-log event happened: the reason token of its decision
 * (src/mail/decision.ts). The daily stats and the metrics count reasons, so
 * rewording a reply cannot change them. Events written before have none.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE events ADD COLUMN reason TEXT`.execute(db);
}
