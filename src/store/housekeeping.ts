// Periodic cleanup of state that has outlived its purpose. Deletes in batches
// within a time budget, so a large backlog never blocks the listener for long.
import { sql } from "kysely";
import type { DB } from "./db.ts";
import { rowLocator } from "./dialect.ts";

const DAY = 86_400_000;

export interface HousekeepingOptions {
  now?: number;
  /** Mail-log events older than this are removed. */
  eventRetentionMs: number;
  /** At most this many mail-log events are kept, the newest (a flood within the retention must not fill the disk). */
  maxEvents?: number;
  batch?: number;
  budgetMs?: number;
}

/** Rows removed per table; a table left unfinished when the budget ran out continues next run. */
export async function housekeeping(db: DB, { now = Date.now(), eventRetentionMs, maxEvents = Number.MAX_SAFE_INTEGER, batch = 5000, budgetMs = 2000 }: HousekeepingOptions): Promise<Record<string, number>> {
  const rules: [table: string, condition: ReturnType<typeof sql>][] = [
    ["fingerprints", sql`last_seen < ${now - 7 * DAY}`],
    ["greylist", sql`last_seen < ${now - 30 * DAY}`],
    ["greylist_senders", sql`last_seen < ${now - 30 * DAY}`],
    ["denylist", sql`expires_at IS NOT NULL AND expires_at < ${now}`],
    ["abuse_counts", sql`window_start < ${now - DAY}`],
    ["rate_counts", sql`window_start < ${now - 3_600_000}`],
    // Failed-login and app-password counters: their longest window is an hour (messages per hour).
    ["login_failures", sql`window_start < ${now - DAY}`],
    // Names a catch-all still learns about and nobody wrote to for a month; an admin's word and suggestions stay.
    ["catchall_names", sql`state = 'learning' AND last_seen < ${now - 30 * DAY}`],
    // An order removes its challenges when it ends; these are of a node that died during one (store/acme.ts).
    ["acme_challenges", sql`created_at < ${now - DAY}`],
    ["events", sql`at < ${now - eventRetentionMs}`],
    // Ids only grow, so the newest maxEvents are those within maxEvents of the highest.
    ["events", sql`id <= (SELECT max(id) FROM events) - ${maxEvents}`],
  ];
  const started = performance.now();
  const removed: Record<string, number> = {};
  const row = rowLocator(db);
  for (const [table, condition] of rules) {
    removed[table] ??= 0;
    for (;;) {
      if (performance.now() - started >= budgetMs) return removed;
      const result = await sql`DELETE FROM ${sql.table(table)} WHERE ${row} IN (SELECT ${row} FROM ${sql.table(table)} WHERE ${condition} LIMIT ${batch})`.execute(db);
      const count = Number(result.numAffectedRows ?? 0n);
      removed[table] += count;
      if (count < batch) break;
    }
  }
  return removed;
}
