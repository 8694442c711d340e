import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/** Delivery bookkeeping: which targets accepted a message (dedup across retries), bounces sent, DSNs waiting. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE fingerprints (
    id TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
  )`);
  await ddl(db, `CREATE INDEX fingerprints_last_seen ON fingerprints (last_seen)`);
  await ddl(db, `CREATE TABLE delivered (
    fingerprint TEXT NOT NULL REFERENCES fingerprints (id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, target)
  )`);
  await ddl(db, `CREATE TABLE bounced (
    fingerprint TEXT NOT NULL REFERENCES fingerprints (id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    code INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, target, code)
  )`);
  await ddl(db, `CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rcpt_to TEXT NOT NULL,
    raw BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL
  )`);
  await ddl(db, `CREATE INDEX outbox_next_attempt ON outbox (next_attempt)`);
}
