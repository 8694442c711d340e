// When to order an ACME certificate, as pure decisions: which names it must
// cover, whether the stored one still does, and how long to wait after a failure.

/** Let's Encrypt's limit of names in one certificate. */
export const MAX_NAMES = 100;
/** Retries after failures wait longer each time, up to this. */
export const MAX_RETRY_DELAY = 6 * 3_600_000;

/** The server hostname first (its common name), then the MTA-STS policy host of each managed domain. */
export function certificateNames(hostname: string, domains: string[]): { names: string[]; leftOut: string[] } {
  const policyHosts = [...new Set(domains.map((d) => `mta-sts.${d}`))].filter((name) => name !== hostname).sort();
  const all = [hostname, ...policyHosts];
  return { names: all.slice(0, MAX_NAMES), leftOut: all.slice(MAX_NAMES) };
}

export interface StoredCertificate {
  names: string[];
  notAfter: number;
  /** The ACME directory it came from: a switch (staging → production) needs a new one. */
  directoryUrl: string;
}

export type OrderReason = "missing" | "expiring" | "names_changed" | "directory_changed";

export interface Failure {
  /** The names of the failed order: other names are worth a new try at once. */
  names: string[];
  count: number;
  retryAt: number;
}

export type RenewalDecision = { action: "keep" } | { action: "order"; reason: OrderReason } | { action: "wait"; reason: OrderReason; retryAt: number };

export interface DecisionInput {
  stored: StoredCertificate | null;
  names: string[];
  directoryUrl: string;
  now: number;
  /** Milliseconds of validity left below which the certificate is renewed. */
  renewBefore: number;
  failure: Failure | null;
}

export function orderReason({ stored, names, directoryUrl, now, renewBefore }: Omit<DecisionInput, "failure">): OrderReason | null {
  if (!stored) return "missing";
  if (stored.directoryUrl !== directoryUrl) return "directory_changed";
  if (!sameNames(stored.names, names)) return "names_changed";
  if (stored.notAfter - now < renewBefore) return "expiring";
  return null;
}

export function decide(input: DecisionInput): RenewalDecision {
  const reason = orderReason(input);
  if (!reason) return { action: "keep" };
  const { failure, names, now } = input;
  if (failure && sameNames(failure.names, names) && now < failure.retryAt) return { action: "wait", reason, retryAt: failure.retryAt };
  return { action: "order", reason };
}

/** `base`, then twice as long after each further failure, at most MAX_RETRY_DELAY. */
export function retryDelay(failures: number, base: number): number {
  return Math.min(base * 2 ** Math.max(0, failures - 1), Math.max(base, MAX_RETRY_DELAY));
}

export function sameNames(a: string[], b: string[]): boolean {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((name, i) => name === y[i]);
}
