// The DNS records a domain owner publishes for mailferry, exactly as zone-file
// lines: MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, and the SRS domain's SPF.
import { createHash } from "node:crypto";
import { dkimRecordValue, type KeyLifecycle, keyState, removableAfter, utcMinute } from "../mail/dkim-key.ts";
import { type Judgement, judgeDkim, judgeDmarc, judgeSpf, type ServerIdentity, type SpfLookup } from "./record-judgement.ts";

export type PublishedRecordType = "MX" | "TXT" | "CNAME" | "A" | "AAAA" | "PTR";

export interface DnsRecord {
  /** Fully qualified, with the trailing dot. */
  name: string;
  type: PublishedRecordType;
  value: string;
  ttl: number;
  purpose: string;
  /** required: without it mail is refused, lost or fails SPF/DKIM; recommended: DMARC, MTA-STS and TLS-RPT harden delivery. */
  level: "required" | "recommended";
}

export interface RecordsInput {
  domain: string;
  /** This node's hostname (the MTA-STS policy host, and the SRS domain by default). */
  hostname: string;
  /** Every node's hostname, sorted (docs/multi-node.md): each is an MX host. Default: this node alone. */
  nodes?: string[];
  srsDomain: string;
  dkimKeys: ({ selector: string; algorithm: string; public_key: string } & KeyLifecycle)[];
  mtaStsMode: "enforce" | "testing";
  /** Addresses on subdomains are in use (or may be made): they need a wildcard MX. */
  subdomains?: boolean;
  /** When the records are shown: a retired key's record says whether it can be removed yet. */
  now?: number;
}

const TTL = 3600;

/** enforce only with a certificate senders can verify; a self-signed one would make them refuse to deliver. */
export function mtaStsMode(hasCaCertificate: boolean): "enforce" | "testing" {
  return hasCaCertificate ? "enforce" : "testing";
}

/** One `mx:` line per MX host (RFC 8461 §3.2): with several nodes, a sender in enforce mode accepts each. */
export function mtaStsPolicy(mxHosts: string[], mode: "enforce" | "testing"): string {
  return `version: STSv1\nmode: ${mode}\n${mxHosts.map((host) => `mx: ${host}\n`).join("")}max_age: 604800\n`;
}

/** Changes whenever the policy does, so senders refetch it (RFC 8461 §3.1: 1-32 alphanumerics). */
export function mtaStsId(policy: string): string {
  return createHash("sha256").update(policy).digest("hex").slice(0, 20);
}

/** A name fully qualified, with the trailing dot of zone files. */
export const fqdn = (name: string) => `${name}.`;

export function dnsRecord(name: string, type: PublishedRecordType, value: string, purpose: string, level: DnsRecord["level"] = "required"): DnsRecord {
  return { name: fqdn(name), type, value, ttl: TTL, purpose, level };
}

/**
 * The signing key's record is required; a pending key's is the next step of a
 * rotation (mailferry switches to the key once DNS serves it); a retired key's
 * stays a week for mail signed before the switch, then may go.
 */
function dkimRecord(domain: string, key: RecordsInput["dkimKeys"][number], now: number): DnsRecord {
  const name = `${key.selector}._domainkey.${domain}`;
  const value = dkimRecordValue(key);
  switch (keyState(key)) {
    case "signing":
      return dnsRecord(name, "TXT", value, `DKIM key (selector ${key.selector})`);
    case "pending":
      return dnsRecord(name, "TXT", value, `DKIM key (selector ${key.selector}, pending: mailferry signs with it once DNS serves this record)`, "recommended");
    case "retired": {
      const after = removableAfter(key)!;
      const retired = `DKIM key (selector ${key.selector} retired on ${utcMinute(key.retired_at!)}; its record can be removed`;
      const when = after <= now ? `now, then run: mailferry domain dkim-remove ${domain} ${key.selector})` : `after ${utcMinute(after)})`;
      return dnsRecord(name, "TXT", value, `${retired} ${when}`, "recommended");
    }
  }
}

export function domainRecords({ domain, hostname, nodes = [hostname], srsDomain, dkimKeys, mtaStsMode: mode, subdomains = false, now = Date.now() }: RecordsInput): DnsRecord[] {
  // Equal preference: senders spread over the nodes and try another when one does not answer (RFC 5321 §5.1).
  const mx = (name: string, purpose: string) => nodes.map((node) => dnsRecord(name, "MX", `10 ${fqdn(node)}`, nodes.length > 1 ? `${purpose} (node ${node})` : purpose));
  const records = [
    ...mx(domain, "MX: mail for the domain comes to mailferry"),
    ...(subdomains ? mx(`*.${domain}`, "MX for addresses on subdomains (x@team.domain)") : []),
    dnsRecord(domain, "TXT", "v=spf1 mx -all", `SPF: the MX host${nodes.length > 1 ? "s" : ""} (mx) may send for the domain: forwarded mail and mail sent as an alias`),
    ...dkimKeys.map((k) => dkimRecord(domain, k, now)),
    dnsRecord(`_dmarc.${domain}`, "TXT", "v=DMARC1; p=quarantine; adkim=r; aspf=r", "DMARC: forwarded copies with a rewritten From are DKIM-signed and pass", "recommended"),
    dnsRecord(`_mta-sts.${domain}`, "TXT", `v=STSv1; id=${mtaStsId(mtaStsPolicy(nodes, mode))}`, `MTA-STS (mode ${mode}), policy served by mailferry`, "recommended"),
    dnsRecord(`mta-sts.${domain}`, "CNAME", fqdn(hostname), "MTA-STS policy host: mailferry's HTTPS server", "recommended"),
    dnsRecord(`_smtp._tls.${domain}`, "TXT", `v=TLSRPTv1; rua=mailto:postmaster@${domain}`, "TLS-RPT: where senders report TLS problems", "recommended"),
  ];
  return [...records, ...srsRecords(srsDomain, hostname, nodes)];
}

/**
 * The SRS domain sends every forwarded copy, so its SPF names every node. As
 * a node's own hostname (the default) each node sends as itself: one record
 * per node's hostname. A shared SRS domain gets one record naming all, and MX
 * records so bounces come back to the nodes.
 */
function srsRecords(srsDomain: string, hostname: string, nodes: string[]): DnsRecord[] {
  if (srsDomain === hostname) {
    const purpose = (node: string) => `SPF of the SRS domain: forwarded mail is sent as ...@${node}${nodes.length > 1 ? " (by that node)" : ""}`;
    return nodes.map((node) => dnsRecord(node, "TXT", "v=spf1 a -all", purpose(node)));
  }
  const spf = dnsRecord(srsDomain, "TXT", `v=spf1 ${nodes.map((node) => `a:${node}`).join(" ")} -all`, `SPF of the SRS domain: forwarded mail is sent as ...@${srsDomain}`);
  const mxs = nodes.map((node) => dnsRecord(srsDomain, "MX", `10 ${fqdn(node)}`, "MX of the SRS domain: bounces come back to mailferry"));
  return [spf, ...mxs];
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
  /** See Judgement; records other than SPF, DMARC and DKIM are ok, missing or different by their text. */
  status: Judgement["status"];
  /** What DNS has for that name and type (TXT: only records of the same kind). */
  found: string[];
  /** Why a lookup found nothing. */
  error?: string;
  /** The judgement in words (a recommendation when ok). */
  note?: string;
}

export type Lookup = (name: string, type: PublishedRecordType) => Promise<unknown>;

/** Why a lookup found nothing: the name or record does not exist, or DNS failed. */
export function lookupError(err: unknown): string {
  const code = (err as { code?: string }).code;
  return code === "ENOTFOUND" || code === "ENODATA" ? "not published" : `lookup failed (${code ?? err})`;
}

/** The published values in the shape zone files show them. */
function published(record: DnsRecord, answer: unknown): string[] {
  if (record.type === "MX") return (answer as { exchange: string; priority: number }[]).map((m) => `${m.priority} ${m.exchange}.`);
  if (record.type === "TXT") return (answer as string[][]).map((parts) => parts.join(""));
  return (answer as string[]).map((n) => (record.type === "A" || record.type === "AAAA" ? n : fqdn(n)));
}

/** MX, CNAME, PTR and the other TXT records (MTA-STS, TLS-RPT) are right when they say what is expected. */
function judgeText(record: DnsRecord, found: string[]): Judgement {
  const same = (a: string, b: string) => (record.type === "TXT" ? a.replace(/\s*;\s*/g, ";").trim() === b.replace(/\s*;\s*/g, ";").trim() : a.toLowerCase() === b.toLowerCase());
  const target = (v: string) => (record.type === "MX" ? v.replace(/^\d+\s+/, "") : v);
  if (found.some((f) => same(target(f), target(record.value)))) return { status: "ok" };
  return { status: found.length ? "different" : "missing" };
}

/**
 * Looks each record up and judges what is published: SPF by evaluating it
 * for this server's addresses, DMARC by its policy, DKIM by its key, the rest
 * by their text.
 */
export async function checkRecords(records: DnsRecord[], lookup: Lookup, server: ServerIdentity): Promise<RecordCheck[]> {
  return Promise.all(
    records.map(async (record): Promise<RecordCheck> => {
      const name = record.name.replace(/\.$/, "");
      let answer: unknown;
      try {
        answer = await lookup(name, record.type);
      } catch (err) {
        return { record, status: "missing", found: [], error: lookupError(err) };
      }
      // Only TXT records of the same kind count (an SPF next to a site-verification TXT is fine);
      // at a DKIM selector every TXT is a key record, and v= is optional there (RFC 6376 §3.6.1).
      const kind = record.value.split(/[;\s]/)[0]!;
      const sameKind = (f: string) => record.type !== "TXT" || kind === "v=DKIM1" || f.toLowerCase().startsWith(kind.toLowerCase());
      const found = published(record, answer).filter(sameKind);
      const judgement = await judge(record, kind, found, lookup, server);
      return { record, found, ...judgement };
    }),
  );
}

function judge(record: DnsRecord, kind: string, found: string[], lookup: Lookup, server: ServerIdentity): Judgement | Promise<Judgement> {
  if (record.type !== "TXT") return judgeText(record, found);
  switch (kind) {
    case "v=spf1":
      return judgeSpf(record.name.replace(/\.$/, ""), found, server, lookup as SpfLookup);
    case "v=DMARC1":
      return judgeDmarc(found);
    case "v=DKIM1":
      return judgeDkim(record.value, found);
    default:
      return judgeText(record, found);
  }
}
