import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * Why each mail-log event happened: the reason token of its decision
 * (src/mail/decision.ts). The daily stats and the metrics count reasons, so
 * rewording a reply cannot change them. Events written before have none.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `ALTER TABLE events ADD COLUMN reason TEXT`);
}
