import type { Kysely } from "kysely";
import { ddl } from "../dialect.ts";

/** A webhook signing key per domain, and vacation responders with their memory of who was answered. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `ALTER TABLE domains ADD COLUMN webhook_key TEXT NOT NULL DEFAULT ''`);
  await ddl(db, `UPDATE domains SET webhook_key = lower(hex(randomblob(32)))`);
  await ddl(db, `CREATE TABLE vacations (
    alias_id INTEGER PRIMARY KEY REFERENCES aliases (id) ON DELETE CASCADE,
    enabled INTEGER NOT NULL DEFAULT 1,
    start_date TEXT,
    end_date TEXT,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  )`);
  await ddl(db, `CREATE TABLE vacation_replies (
    alias_id INTEGER NOT NULL REFERENCES aliases (id) ON DELETE CASCADE,
    sender TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (alias_id, sender)
  )`);
}
