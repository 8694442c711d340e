// Per-day counts for the dashboard, kept apart from the mail log so they
// outlive its 7-day retention.
import { type DB, hotStatement } from "./db.ts";
import type { NewEvent, StatCategory } from "./schema.ts";

export const STAT_CATEGORIES: readonly StatCategory[] = ["forwarded", "rejected", "greylisted", "spam", "bounced", "webhook"];

/**
 * What a mail-log event counts as, if anything: by its reason, stage and
 * reply class, never its text. Events older than the reason column count as
 * forwarded or rejected by stage and code alone.
 */
export function statCategory(e: Pick<NewEvent, "stage" | "code" | "reason">): StatCategory | null {
  if (e.stage === "delivery") {
    if (e.code < 400) return e.reason === "delivered_by_webhook" ? "webhook" : null;
    return e.code >= 500 ? "bounced" : null;
  }
  if (e.stage === "data" && (e.reason === "spam" || e.reason === "gtube")) return "spam";
  if (e.stage === "data" && e.code < 400) return "forwarded";
  if (e.stage === "rcpt" && e.reason === "greylisted") return "greylisted";
  if ((e.stage === "rcpt" || e.stage === "data") && e.code >= 500) return "rejected";
  return null;
}

const addToStat = hotStatement((db, v: { day: string; domain: string; category: StatCategory }) =>
  db
    .insertInto("daily_stats")
    .values({ day: v.day, domain: v.domain, category: v.category, count: 1 })
    .onConflict((oc) => oc.columns(["day", "domain", "category"]).doUpdateSet((eb) => ({ count: eb("daily_stats.count", "+", 1) }))),
);

export async function countStat(db: DB, at: number, domain: string | null, category: StatCategory): Promise<void> {
  await addToStat(db, { day: new Date(at).toISOString().slice(0, 10), domain: domain ?? "", category });
}

export interface DaySeries {
  days: string[];
  /** Counts per category, one per day. */
  series: Record<StatCategory, number[]>;
}

/** The last `days` days (UTC) ending today, every category, all domains or one. */
export async function dailySeries(db: DB, days = 30, domain?: string, now = Date.now()): Promise<DaySeries> {
  const list = Array.from({ length: days }, (_, i) => new Date(now - (days - 1 - i) * 86_400_000).toISOString().slice(0, 10));
  let q = db.selectFrom("daily_stats").select(["day", "category"]).select((eb) => eb.fn.sum<number>("count").as("total")).where("day", ">=", list[0]!);
  if (domain !== undefined) q = q.where("domain", "=", domain);
  const rows = await q.groupBy(["day", "category"]).execute();
  const series = Object.fromEntries(STAT_CATEGORIES.map((c) => [c, list.map(() => 0)])) as Record<StatCategory, number[]>;
  for (const row of rows) {
    const i = list.indexOf(row.day);
    if (i !== -1) series[row.category][i] = Number(row.total);
  }
  return { days: list, series };
}
