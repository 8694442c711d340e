import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * The greylisting auto-allowlist (like postgrey's AWL): a sender key that
 * retried after the delay once is not greylisted again, for any recipient
 * domain, until it has not been seen for 30 days.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE greylist_senders (
    sender_key TEXT PRIMARY KEY,
    passed_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
  )`);
  await ddl(db, `CREATE INDEX greylist_senders_last_seen ON greylist_senders (last_seen)`);
}
