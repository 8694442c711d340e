// The triggers: facts gathered by the alert job in, the alerts they raise out.
// Each counts reasons and status codes, never reply text (docs/architecture.md, "Reasons").
import type { DeliveryFailure } from "../store/alerts.ts";
import type { Condition } from "./decide.ts";

/** Destination answers are counted over this window. */
export const DESTINATION_WINDOW_MS = 15 * 60_000;

export interface DestinationThresholds {
  /** Deferred or refused copies per destination domain in the window. */
  failures: number;
  /** Copies refused for authentication per destination domain in the window. */
  authRejections: number;
}

/** RFC 7372 §3: 5.7.20 to 5.7.27 name an authentication failure (5.7.26: "multiple authentication checks failed"). */
export const isAuthRejection = (f: DeliveryFailure) => f.reason === "refused_by_destination" && /^5\.7\.2[0-7]$/.test(f.enhanced);

const domainOf = (address: string) => address.slice(address.lastIndexOf("@") + 1).toLowerCase();

function byDomain(failures: readonly DeliveryFailure[]): Map<string, DeliveryFailure[]> {
  const domains = new Map<string, DeliveryFailure[]>();
  for (const f of failures) domains.set(domainOf(f.target), [...(domains.get(domainOf(f.target)) ?? []), f]);
  return domains;
}

/** A destination domain deferring or refusing many copies, and one refusing them for authentication (DMARC, SPF, DKIM). */
export function destinationConditions(failures: readonly DeliveryFailure[], thresholds: DestinationThresholds): Condition[] {
  const conditions: Condition[] = [];
  for (const [domain, list] of byDomain(failures)) {
    const deferred = list.filter((f) => f.reason === "deferred_by_destination").length;
    const refused = list.length - deferred;
    if (list.length >= thresholds.failures) {
      conditions.push({
        key: `destination_failures:${domain}`,
        kind: "destination_failures",
        title: `${domain} is deferring or refusing forwarded mail`,
        detail: `${domain} deferred ${deferred} and refused ${refused} of the copies mailferry sent it in the last 15 minutes (alert at ${thresholds.failures}).`,
      });
    }
    const auth = list.filter(isAuthRejection);
    if (auth.length >= thresholds.authRejections) {
      const codes = [...new Set(auth.map((f) => f.enhanced))].sort().join(", ");
      conditions.push({
        key: `auth_rejections:${domain}`,
        kind: "auth_rejections",
        title: `${domain} refuses forwarded mail for authentication`,
        detail: `${domain} refused ${auth.length} copies in the last 15 minutes for authentication (${codes}): check this server's SPF, DKIM and DMARC records (mailferry dns check) and whether From rewriting applies (alert at ${thresholds.authRejections}).`,
      });
    }
  }
  return conditions;
}
