// The alert job: every alerts.check_interval it gathers the triggers' facts,
// decides which notices are due (decide.ts) and sends them (channels.ts).
import type { Logger } from "../log.ts";
import type { DB } from "../store/db.ts";
import type { DnsReport } from "../auth/dns-check.ts";
import { DnsError, dnsblQueryName } from "../dns/resolver.ts";
import { deliveryFailuresSince, digestCounts, digestSince, dnsSeenRight, listAlerts, outboxWaiting, refusedRecipientsSince, resolveAlert, saveAlert, saveDigestSince, saveDnsSeenRight } from "../store/alerts.ts";
import type { DigestPeriod } from "../config/index.ts";
import { parseCertificate } from "../tls/credentials.ts";
import { listDomains } from "../store/domains.ts";
import { announce, type ChannelDeps, sendNotice } from "./channels.ts";
import { buildDigest, DIGEST_TOP, digestWindow } from "./digest.ts";
import { type Condition, type Notice, planNotices } from "./decide.ts";
import { aliasRefusalConditions, COUNT_WINDOW_MS, type DestinationThresholds, type DnsblAnswer, destinationConditions, dnsblConditions, dnsDrift, type ServerFacts, type ServerThresholds, serverConditions } from "./triggers.ts";

export interface AlertJobDeps extends ChannelDeps {
  db: DB;
  intervalMs: number;
  /** Several nodes on one database: only the one this says runs the periodic check (store/job-locks.ts). */
  runsHere?: () => boolean;
  /** Read at each check, so a changed setting applies at the next. */
  thresholds: () => { destination: DestinationThresholds; server: ServerThresholds; aliasRefusals: number };
  server: {
    dataDir: string;
    certificate: () => { cert: Buffer; selfSigned: boolean };
    acmeFailures: () => number;
    freeBytes: () => number;
  };
  /** The DNS check of `mailferry dns check` for these managed domains. */
  checkDns: (names: string[]) => Promise<DnsReport>;
  /** DNS blocklist zones this server's addresses (the host name's A/AAAA) are looked up on. */
  dnsblZones: string[];
  /** `[alerts] digest`: how often the channels get a digest of the mail log. */
  digest: DigestPeriod;
  logger: Logger;
}

export interface AlertJob {
  /** One check: gather, decide, send; resolves when its notices are sent and recorded. */
  check(): Promise<Notice[]>;
  stop(): Promise<void>;
}

/** DNS drift of the managed domains; remembers which records were seen right. */
async function dnsConditions(deps: AlertJobDeps, now: number): Promise<Condition[]> {
  const names = (await listDomains(deps.db)).map((d) => d.name);
  if (names.length === 0) return [];
  const report = await deps.checkDns(names);
  const domains = await Promise.all(report.sections.flatMap((s) => (s.domain === null ? [] : [{ domain: s.domain, checks: s.checks }])).map(async (d) => ({ ...d, seenRight: await dnsSeenRight(deps.db, d.domain) })));
  const drift = dnsDrift(domains);
  for (const [domain, lines] of drift.seenRight) await saveDnsSeenRight(deps.db, domain, lines, now);
  return drift.conditions;
}

/** A blocklist's answer: the A records, none when the name does not exist (not listed), null when the lookup failed. */
function lookupListing(deps: AlertJobDeps, ip: string, zone: string): Promise<string[] | null> {
  return deps.resolver.resolve(dnsblQueryName(ip, zone), "A").catch((err) => (err instanceof DnsError && err.isNegative ? [] : null));
}

/** This server's addresses on each DNSBL zone (RFC 5782 §2.1: the reversed address under the zone). */
async function dnsblAnswers(deps: AlertJobDeps): Promise<DnsblAnswer[]> {
  if (deps.dnsblZones.length === 0) return [];
  const own = (await Promise.all((["A", "AAAA"] as const).map((t) => deps.resolver.resolve(deps.hostname, t).catch(() => [] as string[])))).flat();
  const pairs = own.flatMap((ip) => deps.dnsblZones.map((zone) => ({ ip, zone })));
  return Promise.all(pairs.map(async ({ ip, zone }) => ({ ip, zone, found: await lookupListing(deps, ip, zone) })));
}

async function serverFacts(deps: AlertJobDeps): Promise<ServerFacts> {
  const { dataDir, certificate, acmeFailures, freeBytes } = deps.server;
  const served = certificate();
  return {
    certificateNotAfter: served.selfSigned ? null : parseCertificate(served.cert).notAfter,
    acmeFailures: acmeFailures(),
    freeBytes: freeBytes(),
    dataDir,
    outboxWaiting: await outboxWaiting(deps.db),
  };
}

async function currentConditions(deps: AlertJobDeps, lasting: ReadonlySet<string>, now: number): Promise<Condition[]> {
  const thresholds = deps.thresholds();
  const since = now - COUNT_WINDOW_MS;
  const failures = await deliveryFailuresSince(deps.db, since);
  return [
    ...destinationConditions(failures, thresholds.destination),
    ...aliasRefusalConditions(await refusedRecipientsSince(deps.db, since), thresholds.aliasRefusals),
    ...(await dnsConditions(deps, now)),
    ...dnsblConditions(await dnsblAnswers(deps), lasting),
    ...serverConditions(await serverFacts(deps), thresholds.server, now),
  ];
}

async function record(db: DB, notice: Notice, now: number): Promise<void> {
  if (notice.kind === "resolved") return resolveAlert(db, notice.alert.key, now);
  const { key, kind, title, detail, startedAt } = notice.alert;
  await saveAlert(db, { key, kind, title, detail, started_at: startedAt, last_sent_at: now });
}

/** Sends the digest when one is due; the first check with the digest on only starts its first period. */
async function digestIfDue(deps: AlertJobDeps, now: number): Promise<void> {
  if (deps.digest === "off") return;
  const since = await digestSince(deps.db);
  const window = digestWindow(deps.digest, since, now);
  if (window) await announce(buildDigest(await digestCounts(deps.db, window.from, window.until, DIGEST_TOP), deps.digest, window, deps.hostname), deps);
  if (window || since === null) await saveDigestSince(deps.db, now);
}

export function startAlertJob(deps: AlertJobDeps): AlertJob {
  let running: Promise<Notice[]> | null = null;
  const check = () =>
    (running ??= (async () => {
      try {
        const now = Date.now();
        const stored = await listAlerts(deps.db);
        const lasting = new Set(stored.filter((a) => a.resolved_at === null).map((a) => a.key));
        const notices = planNotices(stored, await currentConditions(deps, lasting, now), now);
        for (const notice of notices) {
          await sendNotice(notice, deps);
          await record(deps.db, notice, now);
        }
        await digestIfDue(deps, now);
        return notices;
      } finally {
        running = null;
      }
    })());
  const timer = setInterval(() => void (deps.runsHere?.() !== false && check().catch((err) => deps.logger.error("alerts.check_failed", { error: err }))), deps.intervalMs);
  timer.unref();
  return {
    check,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
