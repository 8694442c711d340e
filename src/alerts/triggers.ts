// The triggers: facts gathered by the alert job in, the alerts they raise out.
// Each counts reasons and status codes, never reply text (docs/architecture.md, "Reasons").
import { mark } from "../auth/dns-check.ts";
import { type RecordCheck, zoneLine } from "../auth/records.ts";
import type { DeliveryFailure } from "../store/alerts.ts";
import type { Condition } from "./decide.ts";

/** Destination answers and refused messages are counted over this window. */
export const COUNT_WINDOW_MS = 15 * 60_000;

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

export const ALIAS_REFUSALS = "alias_refusals";

/** The address an alias_refusals alert is about, from its key; null for other alerts. */
export const refusedAddressOf = (key: string): string | null => (key.startsWith(`${ALIAS_REFUSALS}:`) ? key.slice(ALIAS_REFUSALS.length + 1) : null);

/** A spike of refused mail for one address: a catch-all name spammers found. The dashboard offers to refuse the name. */
export function aliasRefusalConditions(refusedRecipients: readonly string[], threshold: number): Condition[] {
  const counts = new Map<string, number>();
  for (const address of refusedRecipients) counts.set(address.toLowerCase(), (counts.get(address.toLowerCase()) ?? 0) + 1);
  return [...counts].flatMap(([address, n]) =>
    n < threshold
      ? []
      : [{ key: `${ALIAS_REFUSALS}:${address}`, kind: ALIAS_REFUSALS, title: `Much refused mail for ${address}`, detail: `${n} messages to ${address} were refused in the last 15 minutes (spam, authentication or content; alert at ${threshold}). If nobody uses this name, refuse it: an alias of it that is disabled (hard) answers 550 at RCPT, before any message is read.` }],
  );
}

/** A managed domain's records as the DNS check found them, and the ones seen right before (zone lines). */
export interface DomainDns {
  domain: string;
  checks: RecordCheck[];
  seenRight: readonly string[];
}

/**
 * DNS drift: a record of a managed domain (MX, SPF, DKIM, DMARC, MTA-STS, …)
 * that was seen right once and no longer is. A record never seen right (a
 * domain still being set up) raises nothing: the domain page and `dns check` show it.
 * Returns the conditions and, per domain, the records seen right from now on.
 */
export function dnsDrift(domains: readonly DomainDns[]): { conditions: Condition[]; seenRight: Map<string, string[]> } {
  const conditions: Condition[] = [];
  const seenRight = new Map<string, string[]>();
  for (const { domain, checks, seenRight: before } of domains) {
    const right = checks.filter((c) => mark(c) === "✓").map((c) => zoneLine(c.record));
    const drifted = checks.filter((c) => mark(c) !== "✓" && before.includes(zoneLine(c.record)));
    // Records no longer wanted (a retired DKIM key) are forgotten; drifted ones stay remembered until they are right again.
    seenRight.set(domain, [...right, ...drifted.map((c) => zoneLine(c.record))]);
    if (drifted.length === 0) continue;
    conditions.push({
      key: `dns_drift:${domain}`,
      kind: "dns_drift",
      title: `DNS records of ${domain} changed`,
      detail: `${drifted.length === 1 ? "A record" : `${drifted.length} records`} of ${domain} that DNS served right before ${drifted.length === 1 ? "is" : "are"} now missing or wrong: ${drifted.map((c) => `${c.record.purpose} (${c.status}); publish: ${zoneLine(c.record)}`).join("; ")}. Run mailferry dns check ${domain}.`,
    });
  }
  return { conditions, seenRight };
}

/** One of this server's addresses looked up on one DNS blocklist. */
export interface DnsblAnswer {
  ip: string;
  zone: string;
  /** The A records found (none: not listed), or null when the lookup failed. */
  found: string[] | null;
}

export const dnsblKey = (zone: string, ip: string) => `dnsbl:${zone}:${ip}`;

// A listing answers 127.0.0.0/8 (RFC 5782 §2.1); Spamhaus answers 127.255.255.x
// to say it refused the query (e.g. through a public resolver), which is no listing.
const isListing = (a: string) => a.startsWith("127.") && !a.startsWith("127.255.255.");

/** The server's own address listed on a DNSBL; a failed lookup keeps an alert that lasts as it is. */
export function dnsblConditions(answers: readonly DnsblAnswer[], lasting: ReadonlySet<string>): Condition[] {
  return answers.flatMap(({ ip, zone, found }) => {
    const key = dnsblKey(zone, ip);
    const listed = found === null ? lasting.has(key) : found.some(isListing);
    if (!listed) return [];
    const codes = found?.filter(isListing).join(", ");
    return [{ key, kind: "dnsbl", title: `${ip} is listed on ${zone}`, detail: `This server's address ${ip} is listed on the blocklist ${zone}${codes ? ` (${codes})` : ""}: receivers using it may refuse forwarded mail. See the list's site for why and how to be delisted.` }];
  });
}

/** What the server knows of itself at a check. */
export interface ServerFacts {
  /** When the served certificate expires; null for the self-signed one (nobody relies on it). */
  certificateNotAfter: number | null;
  /** ACME orders failed in a row; 0 without ACME. */
  acmeFailures: number;
  freeBytes: number;
  dataDir: string;
  outboxWaiting: number;
}

export interface ServerThresholds {
  certificateDays: number;
  acmeFailures: number;
  diskFree: number;
  outboxSize: number;
}

const DAY_MS = 86_400_000;
const MIB = 1024 * 1024;

/** The certificate near expiry, ACME failing, the disk filling up, the outbox not draining. */
export function serverConditions(facts: ServerFacts, limits: ServerThresholds, now: number): Condition[] {
  const conditions: Condition[] = [];
  const notAfter = facts.certificateNotAfter;
  if (notAfter !== null && notAfter - now < limits.certificateDays * DAY_MS) {
    const when = new Date(notAfter).toISOString();
    const detail = notAfter <= now ? `The TLS certificate expired ${when}.` : `The TLS certificate expires ${when}, in ${Math.floor((notAfter - now) / DAY_MS)} days.`;
    conditions.push({ key: "certificate_expiry", kind: "certificate_expiry", title: "The TLS certificate expires soon", detail: `${detail} Senders requiring TLS, MTA-STS and the admin UI over HTTPS need a valid one: renew it (tls.cert) or check ACME (mailferry doctor).` });
  }
  if (facts.acmeFailures >= limits.acmeFailures) {
    conditions.push({ key: "acme_failures", kind: "acme_failures", title: "ACME keeps failing", detail: `The last ${facts.acmeFailures} ACME orders for the certificate failed (the log's acme.failed lines say why); the current certificate is not renewed.` });
  }
  if (facts.freeBytes < limits.diskFree) {
    conditions.push({ key: "disk_free", kind: "disk_free", title: "Disk space is low", detail: `Only ${Math.floor(facts.freeBytes / MIB)} MiB are free for ${facts.dataDir} (alert below ${Math.floor(limits.diskFree / MIB)} MiB): free space or move the data dir to a larger disk.` });
  }
  if (facts.outboxWaiting >= limits.outboxSize) {
    conditions.push({ key: "outbox_size", kind: "outbox_size", title: "The outbox is not draining", detail: `${facts.outboxWaiting} messages (sent as an alias, DSNs, vacation replies, verification and alert mails) wait in the outbound queue for a retry (alert at ${limits.outboxSize}): their destinations defer them, or outbound port 25 or the smarthost is blocked (mailferry doctor).` });
  }
  return conditions;
}
