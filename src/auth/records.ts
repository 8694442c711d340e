// The DNS records a domain owner publishes for mailferry, exactly as zone-file
// lines: MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, and the SRS domain's SPF.
import { createHash } from "node:crypto";
import { dkimRecordValue } from "./dkim.ts";

export type RecordType = "MX" | "TXT" | "CNAME" | "A" | "AAAA" | "PTR";

export interface DnsRecord {
  /** Fully qualified, with the trailing dot. */
  name: string;
  type: RecordType;
  value: string;
  ttl: number;
  purpose: string;
  /** required: without it mail is refused, lost or fails SPF/DKIM; recommended: DMARC, MTA-STS and TLS-RPT harden delivery. */
  level: "required" | "recommended";
}

export interface RecordsInput {
  domain: string;
  /** The MX host name (mailferry's hostname). */
  hostname: string;
  srsDomain: string;
  dkimKeys: { selector: string; algorithm: string; public_key: string }[];
  mtaStsMode: "enforce" | "testing";
  /** Addresses on subdomains are in use (or may be made): they need a wildcard MX. */
  subdomains?: boolean;
}

const TTL = 3600;

/** enforce only with a certificate senders can verify; a self-signed one would make them refuse to deliver. */
export function mtaStsMode(hasCaCertificate: boolean): "enforce" | "testing" {
  return hasCaCertificate ? "enforce" : "testing";
}

export function mtaStsPolicy(hostname: string, mode: "enforce" | "testing"): string {
  return `version: STSv1\nmode: ${mode}\nmx: ${hostname}\nmax_age: 604800\n`;
}

/** Changes whenever the policy does, so senders refetch it (RFC 8461 §3.1: 1-32 alphanumerics). */
export function mtaStsId(policy: string): string {
  return createHash("sha256").update(policy).digest("hex").slice(0, 20);
}

/** A name fully qualified, with the trailing dot of zone files. */
export const fqdn = (name: string) => `${name}.`;

export function dnsRecord(name: string, type: RecordType, value: string, purpose: string, level: DnsRecord["level"] = "required"): DnsRecord {
  return { name: fqdn(name), type, value, ttl: TTL, purpose, level };
}

export function domainRecords({ domain, hostname, srsDomain, dkimKeys, mtaStsMode: mode, subdomains = false }: RecordsInput): DnsRecord[] {
  const records = [
    dnsRecord(domain, "MX", `10 ${fqdn(hostname)}`, "MX: mail for the domain comes to mailferry"),
    ...(subdomains ? [dnsRecord(`*.${domain}`, "MX", `10 ${fqdn(hostname)}`, "MX for addresses on subdomains (x@team.domain)")] : []),
    dnsRecord(domain, "TXT", "v=spf1 mx -all", "SPF: the MX host may send for the domain"),
    ...dkimKeys.map((k) => dnsRecord(`${k.selector}._domainkey.${domain}`, "TXT", dkimRecordValue(k), `DKIM key (selector ${k.selector})`)),
    dnsRecord(`_dmarc.${domain}`, "TXT", "v=DMARC1; p=quarantine; adkim=r; aspf=r", "DMARC: forwarded copies with a rewritten From are DKIM-signed and pass", "recommended"),
    dnsRecord(`_mta-sts.${domain}`, "TXT", `v=STSv1; id=${mtaStsId(mtaStsPolicy(hostname, mode))}`, `MTA-STS (mode ${mode}), policy served by mailferry`, "recommended"),
    dnsRecord(`mta-sts.${domain}`, "CNAME", fqdn(hostname), "MTA-STS policy host: mailferry's HTTPS server", "recommended"),
    dnsRecord(`_smtp._tls.${domain}`, "TXT", `v=TLSRPTv1; rua=mailto:postmaster@${domain}`, "TLS-RPT: where senders report TLS problems", "recommended"),
  ];
  const srsSpf = srsDomain === hostname ? "v=spf1 a -all" : `v=spf1 a:${hostname} -all`;
  records.push(dnsRecord(srsDomain, "TXT", srsSpf, `SPF of the SRS domain: forwarded mail is sent as ...@${srsDomain}`));
  if (srsDomain !== hostname) records.push(dnsRecord(srsDomain, "MX", `10 ${fqdn(hostname)}`, "MX of the SRS domain: bounces come back to mailferry"));
  return records;
}

/** `name ttl IN TYPE value`; TXT values quoted and split into strings of at most 255 bytes. */
export function zoneLine(r: DnsRecord): string {
  const value = r.type === "TXT" ? txtStrings(r.value) : r.value;
  return `${r.name} ${r.ttl} IN ${r.type} ${value}`;
}

function txtStrings(value: string): string {
  const bytes = Buffer.from(value, "utf8");
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += 255) parts.push(bytes.subarray(i, i + 255).toString("utf8"));
  return parts.map((p) => `"${p.replace(/[\\"]/g, "\\$&")}"`).join(" ");
}

export interface RecordCheck {
  record: DnsRecord;
  status: "ok" | "missing" | "different";
  /** What DNS has for that name and type. */
  found: string[];
  error?: string;
}

export type Lookup = (name: string, type: RecordType) => Promise<unknown>;

/** Why a lookup found nothing: the name or record does not exist, or DNS failed. */
export function lookupError(err: unknown): string {
  const code = (err as { code?: string }).code;
  return code === "ENOTFOUND" || code === "ENODATA" ? "not published" : `lookup failed (${code ?? err})`;
}

/** Looks each record up and compares what is published with what is expected. */
export async function checkRecords(records: DnsRecord[], lookup: Lookup): Promise<RecordCheck[]> {
  return Promise.all(
    records.map(async (record): Promise<RecordCheck> => {
      const name = record.name.replace(/\.$/, "");
      let found: string[];
      try {
        const answer = await lookup(name, record.type);
        if (record.type === "MX") found = (answer as { exchange: string; priority: number }[]).map((m) => `${m.priority} ${m.exchange}.`);
        else if (record.type === "TXT") found = (answer as string[][]).map((parts) => parts.join(""));
        else found = (answer as string[]).map((n) => (record.type === "A" || record.type === "AAAA" ? n : fqdn(n)));
      } catch (err) {
        return { record, status: "missing", found: [], error: lookupError(err) };
      }
      const same = (a: string, b: string) => (record.type === "TXT" ? a.replace(/\s*;\s*/g, ";").trim() === b.replace(/\s*;\s*/g, ";").trim() : a.toLowerCase() === b.toLowerCase());
      const expected = record.type === "MX" ? record.value.replace(/^\d+\s+/, "") : record.value;
      const match = found.some((f) => (record.type === "MX" ? same(f.replace(/^\d+\s+/, ""), expected) : same(f, expected)));
      // Only TXT records of the same kind count (an SPF next to a site-verification TXT is fine).
      const kind = record.value.split(/[;\s]/)[0]!;
      const relevant = record.type === "TXT" ? found.filter((f) => f.startsWith(kind)) : found;
      return { record, status: match ? "ok" : relevant.length ? "different" : "missing", found: relevant };
    }),
  );
}
