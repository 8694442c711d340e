import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * The learning catch-all (docs/aliases.md, "Learning catch-all"): per name a
 * catch-all alias accepted, how many of its messages were spam and how many
 * were not, and what became of it: still learning, suggested for refusal,
 * refused (550 at RCPT) or allowed again by an admin (never suggested again).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE catchall_names (
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    spam INTEGER NOT NULL DEFAULT 0,
    good INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'learning' CHECK (state IN ('learning', 'suggested', 'refused', 'allowed')),
    last_seen INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    PRIMARY KEY (domain, name)
  )`);
  await ddl(db, `CREATE INDEX catchall_names_state ON catchall_names (state, last_seen)`);
}
