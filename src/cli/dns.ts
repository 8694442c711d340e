// `mailferry dns check [domain]`, also reached as `domain dns <name> --check`:
// every record mailferry needs, looked up in DNS now, with the zone-file line
// to publish where one is missing or wrong.
import { type DnsReport, mark, reportSummary } from "../auth/dns-check.ts";
import { type RecordCheck, zoneLine } from "../auth/records.ts";
import { createResolver } from "../dns/resolver.ts";
import { listDomains, parseDomainName } from "../store/domains.ts";
import { withServices } from "./context.ts";
import { type CommandContext, UsageError } from "./command.ts";

export function dnsCommand(ctx: CommandContext): Promise<number> {
  const [action, domain, ...rest] = ctx.args;
  if (action !== "check" || rest.length) throw new UsageError("usage: mailferry dns check [domain] [--json]");
  return dnsCheck(ctx, domain);
}

/**
 * One domain (or every managed one) and the host records; pending DKIM keys
 * whose record DNS serves start signing first. Exit code 0 when every required
 * record does its job (recommendations do not count).
 */
export async function dnsCheck(ctx: CommandContext, domain?: string): Promise<number> {
  const { config } = ctx.config();
  // The configured resolvers without a cache: what DNS publishes right now, as the admin UI's check.
  const resolver = createResolver({ servers: config.dns.servers, timeout: config.dns.timeout, maxCacheEntries: 0 });
  const report = await withServices(ctx, async (services, store) => {
    const names = domain ? [parseDomainName(domain)] : (await listDomains(store.db)).map((d) => d.name);
    return services.domains.checkDns(names, (name, type) => resolver.resolve(name, type));
  });
  if (ctx.json) ctx.io.out(JSON.stringify(reportJson(report)));
  else ctx.io.out(reportLines(report).join("\n"));
  return report.ok ? 0 : 1;
}

/** Per section a heading, then per record its mark, purpose and finding, and the zone-file line. */
function reportLines(report: DnsReport): string[] {
  const line = (c: RecordCheck) => {
    const level = c.record.level === "recommended" ? " (recommended)" : "";
    const detail = c.status === "ok" ? c.note : finding(c);
    return `  ${mark(c)} ${c.record.purpose}${level}${detail ? `: ${detail}` : ""}\n      ${zoneLine(c.record)}`;
  };
  return [...report.sections.flatMap((s) => [s.title, ...s.checks.map(line)]), reportSummary(report)];
}

/** For machines: `domain` is null for the host records; `zone_line` is what to publish. */
function reportJson(report: DnsReport) {
  const records = report.sections.flatMap((s) => s.checks.map(({ record, ...check }) => ({ domain: s.domain, ...record, ...check, zone_line: zoneLine(record) })));
  return { ok: report.ok, records };
}

/** What is wrong: the judgement of SPF, DMARC and DKIM, else what DNS has instead. */
function finding(check: RecordCheck): string {
  if (check.note) return check.note;
  if (check.status === "missing") return check.error ?? "not published";
  return `published differently: ${check.found.map((f) => JSON.stringify(f)).join(", ")}`;
}
