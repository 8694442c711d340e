import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * Issue 19: app passwords for authenticated submission (docs/send-as.md). One
 * row per password: the address it may send as, or the domain any address of
 * which it may send as; only a hash of the secret is kept.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `CREATE TABLE app_passwords (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('address', 'domain')),
    identity TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  )`);
  await ddl(db, `CREATE UNIQUE INDEX app_passwords_active_name ON app_passwords (identity, name) WHERE revoked_at IS NULL`);
}
