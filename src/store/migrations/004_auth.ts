import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/** DKIM keys per domain (rotation keeps old selectors published), and the local allowlist. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE dkim_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    retired INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (domain_id, selector)
  )`);
  await ddl(db, `CREATE TABLE allowlist (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('ip', 'cidr', 'domain', 'address')),
    value TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    UNIQUE (kind, value)
  )`);
}
