// When an alert is sent (docs/operations.md, "Alerts"): once when it starts,
// again at most daily while it lasts, and a "resolved" notice when it ends.
// Pure: the stored alerts and what the triggers see now in, notices out.
import type { Alert } from "../store/schema.ts";

/** What one trigger sees now: the alert it raises, by a key naming what it is about. */
export interface Condition {
  /** `kind:subject`, e.g. `destination_failures:gmail.com`. */
  key: string;
  kind: string;
  title: string;
  detail: string;
}

export type NoticeKind = "started" | "repeated" | "resolved";

export interface Notice {
  kind: NoticeKind;
  alert: Condition & { startedAt: number };
}

export const REPEAT_AFTER_MS = 86_400_000;

export function planNotices(stored: readonly Alert[], current: readonly Condition[], now: number): Notice[] {
  const lasting = new Map(stored.filter((a) => a.resolved_at === null).map((a) => [a.key, a]));
  const seen = new Set(current.map((c) => c.key));
  const notices: Notice[] = [];
  for (const condition of current) {
    const known = lasting.get(condition.key);
    if (!known) notices.push({ kind: "started", alert: { ...condition, startedAt: now } });
    else if (now - known.last_sent_at >= REPEAT_AFTER_MS) notices.push({ kind: "repeated", alert: { ...condition, startedAt: known.started_at } });
  }
  for (const known of lasting.values()) {
    if (!seen.has(known.key)) notices.push({ kind: "resolved", alert: { key: known.key, kind: known.kind, title: known.title, detail: known.detail, startedAt: known.started_at } });
  }
  return notices;
}
