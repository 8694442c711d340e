// The alert job: every alerts.check_interval it gathers the triggers' facts,
// decides which notices are due (decide.ts) and sends them (channels.ts).
import type { Logger } from "../log.ts";
import type { DB } from "../store/db.ts";
import type { DnsReport } from "../auth/dns-check.ts";
import { deliveryFailuresSince, dnsSeenRight, listAlerts, resolveAlert, saveAlert, saveDnsSeenRight } from "../store/alerts.ts";
import { listDomains } from "../store/domains.ts";
import { type ChannelDeps, sendNotice } from "./channels.ts";
import { type Condition, type Notice, planNotices } from "./decide.ts";
import { DESTINATION_WINDOW_MS, type DestinationThresholds, destinationConditions, dnsDrift } from "./triggers.ts";

export interface AlertJobDeps extends ChannelDeps {
  db: DB;
  intervalMs: number;
  thresholds: { destination: DestinationThresholds };
  /** The DNS check of `mailferry dns check` for these managed domains. */
  checkDns: (names: string[]) => Promise<DnsReport>;
  logger: Logger;
  clock?: () => number;
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

async function currentConditions(deps: AlertJobDeps, now: number): Promise<Condition[]> {
  const failures = await deliveryFailuresSince(deps.db, now - DESTINATION_WINDOW_MS);
  return [...destinationConditions(failures, deps.thresholds.destination), ...(await dnsConditions(deps, now))];
}

async function record(db: DB, notice: Notice, now: number): Promise<void> {
  if (notice.kind === "resolved") return resolveAlert(db, notice.alert.key, now);
  const { key, kind, title, detail, startedAt } = notice.alert;
  await saveAlert(db, { key, kind, title, detail, started_at: startedAt, last_sent_at: now });
}

export function startAlertJob(deps: AlertJobDeps): AlertJob {
  const clock = deps.clock ?? Date.now;
  let running: Promise<Notice[]> | null = null;
  const check = () =>
    (running ??= (async () => {
      try {
        const now = clock();
        const notices = planNotices(await listAlerts(deps.db), await currentConditions(deps, now), now);
        for (const notice of notices) {
          await sendNotice(notice, deps);
          await record(deps.db, notice, now);
        }
        return notices;
      } finally {
        running = null;
      }
    })());
  const timer = setInterval(() => void check().catch((err) => deps.logger.error("alerts.check_failed", { error: err })), deps.intervalMs);
  timer.unref();
  return {
    check,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
