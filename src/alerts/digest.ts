// The optional digest on the alert channels (`[alerts] digest`, docs/operations.md
// "Alerts"): the mail of the last day or week in counts. Pure: the counts of the
// mail log (src/store/alerts.ts digestCounts) in, the announcement out.
import type { DigestPeriod } from "../config/index.ts";
import type { DigestCounts } from "../store/alerts.ts";
import { type Announcement, signOff } from "./channels.ts";

export const DIGEST_PERIOD_MS: Record<Exclude<DigestPeriod, "off">, number> = { daily: 86_400_000, weekly: 7 * 86_400_000 };
/** How many senders and aliases a digest names. */
export const DIGEST_TOP = 5;

/**
 * The span the digest due now covers, or null when none is due: a whole period
 * after the last one (or after the digest was turned on), and never more than
 * one period back, so turning it on again after a while sends no giant digest.
 */
export function digestWindow(period: DigestPeriod, since: number | null, now: number): { from: number; until: number } | null {
  if (period === "off" || since === null || now - since < DIGEST_PERIOD_MS[period]) return null;
  return { from: Math.max(since, now - DIGEST_PERIOD_MS[period]), until: now };
}

const HEADLINE: Record<Exclude<DigestPeriod, "off">, string> = { daily: "Daily digest", weekly: "Weekly digest" };
const minute = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");

function section(title: string, rows: { name: string; count: number }[]): string[] {
  return [title, ...(rows.length ? rows.map((r) => `  ${r.count.toString().padStart(6)}  ${r.name}`) : ["  (none)"]), ""];
}

export function buildDigest(counts: DigestCounts, period: Exclude<DigestPeriod, "off">, window: { from: number; until: number }, hostname: string): Announcement {
  const messages = counts.reasons.reduce((sum, r) => sum + r.count, 0);
  const refused = counts.reasons.reduce((sum, r) => sum + r.refused, 0);
  const text = [
    `${HEADLINE[period]} of mailferry at ${hostname}, ${minute(window.from)} to ${minute(window.until)} UTC.`,
    "",
    ...section("Answers by reason (docs/architecture.md, Reasons):", counts.reasons.map((r) => ({ name: r.reason, count: r.count }))),
    ...section("Senders refused most:", counts.refusedSenders.map((r) => ({ name: r.sender, count: r.count }))),
    ...section("Aliases that got most mail:", counts.aliases.map((r) => ({ name: r.alias, count: r.count }))),
    signOff(hostname),
  ].join("\n");
  return {
    log: { digest: period },
    subject: `${HEADLINE[period]}: ${messages} answers, ${refused} refused or deferred`,
    text,
    json: {
      event: "digest",
      period,
      from: new Date(window.from).toISOString(),
      until: new Date(window.until).toISOString(),
      reasons: Object.fromEntries(counts.reasons.map((r) => [r.reason, r.count])),
      refused_senders: counts.refusedSenders,
      aliases: counts.aliases,
    },
    urgent: false,
    tag: "bar_chart",
  };
}
