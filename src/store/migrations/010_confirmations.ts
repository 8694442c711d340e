import { type Kysely, sql } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * Who must confirm a forwarding destination (docs/aliases.md, "Destinations"):
 * an alias saved by a write-scope API token is marked, and only marked aliases
 * wait for their outside destinations to confirm under verify_destinations =
 * tokens. A destination records what confirmed it (an admin, a reply, a link
 * or a code). Aliases saved before this migration whose destinations are still
 * unconfirmed keep waiting, as they did: nothing starts forwarding unasked.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `ALTER TABLE aliases ADD COLUMN confirm_targets INTEGER NOT NULL DEFAULT 0`);
  await ddl(db, `ALTER TABLE destinations ADD COLUMN confirmed_by TEXT`);
  await sql`UPDATE destinations SET confirmed_by = 'link' WHERE verified_at IS NOT NULL`.execute(db);
  const pending = new Set((await sql<{ address: string }>`SELECT address FROM destinations WHERE verified_at IS NULL`.execute(db)).rows.map((r) => r.address));
  const aliases = (await sql<{ id: number; recipients: string }>`SELECT id, recipients FROM aliases`.execute(db)).rows;
  for (const alias of aliases) {
    const recipients = JSON.parse(alias.recipients) as string[];
    if (recipients.some((r) => pending.has(r.toLowerCase()))) await sql`UPDATE aliases SET confirm_targets = 1 WHERE id = ${alias.id}`.execute(db);
  }
}
