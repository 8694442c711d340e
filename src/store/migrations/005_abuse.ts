import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/** Greylist, denylist, abuse and rate counters (docs/delivery-and-authentication.md, "Abuse protection"), and the per-domain scanning switch. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE greylist (
    key TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    passed_at INTEGER,
    last_seen INTEGER NOT NULL
  )`);
  await ddl(db, `CREATE INDEX greylist_last_seen ON greylist (last_seen)`);
  await ddl(db, `CREATE TABLE denylist (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('ip', 'cidr', 'domain', 'address')),
    value TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL CHECK (source IN ('admin', 'auto')),
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (kind, value)
  )`);
  await ddl(db, `CREATE TABLE abuse_counts (
    key TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL
  )`);
  await ddl(db, `CREATE TABLE rate_counts (
    key TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL
  )`);
  await ddl(db, `ALTER TABLE domains ADD COLUMN scan_spam INTEGER NOT NULL DEFAULT 1`);
}
