import { type Kysely, sql } from "kysely";
import { ddl } from "../dialect.ts";

/**
 * Two-phase DKIM rotation: a new key is pending (published, not signing)
 * until DNS serves its record, then signs; the key it replaces is retired
 * and stays published for a week. The old `retired` flag becomes the time of
 * each step. Keys retired before this migration were retired when the next
 * key was made (rotation switched at once then).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await ddl(db, `ALTER TABLE dkim_keys ADD COLUMN activated_at INTEGER`);
  await ddl(db, `ALTER TABLE dkim_keys ADD COLUMN retired_at INTEGER`);
  await sql`UPDATE dkim_keys SET activated_at = created_at`.execute(db);
  await sql`UPDATE dkim_keys SET retired_at = COALESCE(
    (SELECT MIN(n.created_at) FROM dkim_keys n WHERE n.domain_id = dkim_keys.domain_id AND n.id > dkim_keys.id),
    created_at
  ) WHERE retired = 1`.execute(db);
  await ddl(db, `ALTER TABLE dkim_keys DROP COLUMN retired`);
}
