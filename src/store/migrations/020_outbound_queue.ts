import { type Kysely, sql } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * The outbox becomes the durable outbound queue (docs/delivery-and-authentication.md,
 * "Outbound queue"): a message has an envelope sender, a submitter who gets the
 * DSN or delay notice, and one row per recipient, so a partial delivery retries
 * only the recipients still pending. Queued rows keep their recipient.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `ALTER TABLE outbox ADD COLUMN mail_from TEXT NOT NULL DEFAULT ''`);
  await ddl(db, `ALTER TABLE outbox ADD COLUMN submitter TEXT`);
  await ddl(db, `ALTER TABLE outbox ADD COLUMN delay_notice_at INTEGER`);
  await ddl(db, `CREATE TABLE outbox_recipients (
    outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    reply_code INTEGER,
    reply_enhanced TEXT,
    reply_text TEXT,
    remote_mta TEXT,
    PRIMARY KEY (outbox_id, address)
  )`);
  await sql`INSERT INTO outbox_recipients (outbox_id, address) SELECT id, rcpt_to FROM outbox`.execute(db);
  await ddl(db, `ALTER TABLE outbox DROP COLUMN rcpt_to`);
}
