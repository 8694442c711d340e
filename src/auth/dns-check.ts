// The DNS check behind `mailferry dns check`, `domain dns --check` and the
// admin UI's domain page: the records each domain needs plus the server's own
// host records (its address, and reverse DNS that names it), looked up now.
import { reverseName } from "../dns/resolver.ts";
import { checkRecords, type DnsRecord, dnsRecord, fqdn, type Lookup, lookupError, type RecordCheck, zoneLine } from "./records.ts";

export interface CheckSection {
  /** The managed domain, or null for the server's host records. */
  domain: string | null;
  title: string;
  checks: RecordCheck[];
}

export interface DnsReport {
  sections: CheckSection[];
  /** Every required record is published as expected (recommended ones may be missing). */
  ok: boolean;
}

/** What to publish when the host name has no address yet; the real value is known only to its owner. */
const ADDRESS_PLACEHOLDER = "<public IP address of this server>";

/**
 * ✓ does its job (perhaps with a recommendation); ✗ a required record is
 * missing or wrong, or a published one is unusable; ! a recommended one is
 * missing or wrong, or one works but leaves the domain open to forgery.
 */
export function mark(check: RecordCheck): "✓" | "✗" | "!" {
  if (check.status === "ok") return "✓";
  if (check.status === "weak") return "!";
  if (check.status === "invalid") return "✗";
  return check.record.level === "required" ? "✗" : "!";
}

interface HostAddresses {
  found: { type: "A" | "AAAA"; address: string }[];
  /** Why no address was found, when none was. */
  error: string | null;
}

/** The MX host name's A and AAAA records: this server's public addresses. */
async function hostAddresses(hostname: string, lookup: Lookup): Promise<HostAddresses> {
  const families = await Promise.all(
    (["A", "AAAA"] as const).map(async (type) => {
      try {
        return { type, addresses: (await lookup(hostname, type)) as string[], error: null };
      } catch (err) {
        return { type, addresses: [] as string[], error: lookupError(err) };
      }
    }),
  );
  const found = families.flatMap((f) => f.addresses.map((address) => ({ type: f.type, address })));
  const failure = families.map((f) => f.error).find((e) => e !== null && e !== "not published");
  return { found, error: found.length ? null : (failure ?? "not published") };
}

/**
 * The MX host name must have an address (A or AAAA), and each address a PTR
 * naming the host name: receivers check this forward-confirmed reverse DNS.
 */
async function hostChecks(hostname: string, host: HostAddresses, lookup: Lookup): Promise<RecordCheck[]> {
  if (host.found.length === 0) {
    const record = dnsRecord(hostname, "A", ADDRESS_PLACEHOLDER, "A/AAAA: the MX host name has this server's address (then its PTR must name it)");
    return [{ record, status: "missing", found: [], error: host.error ?? "not published" }];
  }
  const addressChecks = host.found.map(({ type, address }): RecordCheck => ({ record: dnsRecord(hostname, type, address, `${type}: the MX host name has an address`), status: "ok", found: [address] }));
  const ptrs = host.found.map(({ address }) => dnsRecord(reverseName(address), "PTR", fqdn(hostname), `PTR of ${address} names the MX host (reverse DNS: set it at your hosting provider)`));
  return [...addressChecks, ...(await checkRecords(ptrs, lookup, { hostname, addresses: [] }))];
}

/**
 * Each domain's records, then the host records; a record shared by several
 * domains (the SRS domain's) is checked once. SPF records are evaluated for
 * the host name's addresses: those are where forwarded mail leaves from.
 */
export async function checkDns(domains: { name: string; records: DnsRecord[] }[], hostname: string, lookup: Lookup): Promise<DnsReport> {
  const seen = new Set<string>();
  const firstTime = (r: DnsRecord) => {
    const key = zoneLine(r);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  };
  const wanted = domains.map((d) => ({ name: d.name, records: d.records.filter(firstTime) }));
  const host = await hostAddresses(hostname, lookup);
  const server = { hostname, addresses: host.found.map((f) => f.address) };
  const sections: CheckSection[] = await Promise.all([
    ...wanted.map(async (d) => ({ domain: d.name, title: d.name, checks: await checkRecords(d.records, lookup, server) })),
    hostChecks(hostname, host, lookup).then((checks) => ({ domain: null, title: `${hostname} (this server)`, checks })),
  ]);
  const ok = sections.every((s) => s.checks.every((c) => mark(c) !== "✗"));
  return { sections, ok };
}

/** One line saying how it went, e.g. "9 of 12 records as expected; 2 required ones missing or wrong". */
export function reportSummary(report: DnsReport): string {
  const checks = report.sections.flatMap((s) => s.checks);
  const good = checks.filter((c) => c.status === "ok").length;
  const broken = checks.filter((c) => mark(c) === "✗").length;
  const head = `${good} of ${checks.length} records published as expected`;
  if (broken) return `${head}; ${broken} required ${broken === 1 ? "record is" : "records are"} missing or wrong`;
  return good === checks.length ? head : `${head}; all required records are right, the others are recommended`;
}
