// What a published SPF, DMARC or DKIM record means for this server, judged
// the way receivers read it rather than compared as text: an SPF record that
// also includes another provider still authorizes us, any valid DMARC policy
// works, and a DKIM record is right when it carries exactly our public key.

export interface Judgement {
  /**
   * ok: does its job (a note may recommend better); weak: does its job for
   * this server but leaves the domain open to forgery; different: published
   * but not doing its job; invalid: receivers cannot use it; missing: none.
   */
  status: "ok" | "weak" | "different" | "invalid" | "missing";
  /** The judgement in words, when there is more to say than ✓ or ✗. */
  note?: string;
}

/** This server as SPF sees it: the host name and the addresses mail leaves from (its A/AAAA). */
export interface ServerIdentity {
  hostname: string;
  addresses: string[];
}

export type SpfLookup = (name: string, type: string) => Promise<unknown>;

/** `k=v; k=v` tag lists of DKIM (RFC 6376 §3.2) and DMARC (RFC 7489 §6.4) records. */
export function parseTags(record: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of record.split(";")) {
    const at = part.indexOf("=");
    if (at > 0) tags.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  return tags;
}

/** The key a DKIM record publishes (algorithm and base64 key, whitespace removed), or null when it is not a usable key record. */
function dkimKey(record: string): { k: string; p: string } | null {
  const tags = parseTags(record);
  const version = tags.get("v");
  // RFC 6376 §3.6.1: v= is optional, but when present it must be DKIM1.
  if (version !== undefined && version !== "DKIM1") return null;
  const p = tags.get("p")?.replace(/\s+/g, "");
  // An empty p= revokes the key (RFC 6376 §3.6.1).
  return p ? { k: tags.get("k") ?? "rsa", p } : null;
}

/** True when a TXT record publishes exactly the key of `expected` (our record value). */
export function publishesDkimKey(found: string, expected: string): boolean {
  const want = dkimKey(expected);
  const have = dkimKey(found);
  return want !== null && have !== null && want.k === have.k && want.p === have.p;
}

export function judgeDkim(expected: string, found: string[]): Judgement {
  if (found.some((f) => publishesDkimKey(f, expected))) return { status: "ok" };
  if (found.length === 0) return { status: "missing" };
  return { status: "different", note: `publishes another key than this one: ${found.map((f) => JSON.stringify(f)).join(", ")}` };
}

const DMARC_POLICIES = new Set(["none", "quarantine", "reject"]);

/** RFC 7489 §6.3 and §6.6.3: one record, v=DMARC1 first, a known p=; p=none and pct<100 work but protect little. */
export function judgeDmarc(found: string[]): Judgement {
  if (found.length === 0) return { status: "missing" };
  if (found.length > 1) return { status: "invalid", note: `${found.length} DMARC records: receivers ignore them all (RFC 7489 §6.6.3); keep one` };
  const record = found[0]!;
  if (!/^v\s*=\s*DMARC1\s*(;|$)/.test(record)) return { status: "invalid", note: `not a DMARC record: it must start with v=DMARC1: ${JSON.stringify(record)}` };
  const tags = parseTags(record);
  const policy = tags.get("p");
  if (policy === undefined || !DMARC_POLICIES.has(policy.toLowerCase())) return { status: "invalid", note: `p= must be none, quarantine or reject: ${JSON.stringify(record)}` };
  const sub = tags.get("sp");
  if (sub !== undefined && !DMARC_POLICIES.has(sub.toLowerCase())) return { status: "invalid", note: `sp= must be none, quarantine or reject: ${JSON.stringify(record)}` };
  const pct = tags.get("pct");
  if (pct !== undefined && !(/^\d{1,3}$/.test(pct) && Number(pct) <= 100)) return { status: "invalid", note: `pct= must be 0 to 100: ${JSON.stringify(record)}` };
  if (policy.toLowerCase() === "none") return { status: "ok", note: "p=none only monitors; recommended: p=quarantine or p=reject, so receivers act on forged mail" };
  if (pct !== undefined && Number(pct) < 100) return { status: "ok", note: `pct=${pct} applies the policy to part of the failing mail only; recommended: leave pct out` };
  return { status: "ok" };
}

/** Addresses that are never a real sender (RFC 5737, RFC 3849): if one passes, everyone does. */
const DOCUMENTATION_ADDRESS = { v4: "192.0.2.1", v6: "2001:db8::1" };

/** An upper bound for one evaluation: each query is bounded by the resolver's timeout, and at most about 30 are made. */
const SPF_TIME_LIMIT_MS = 30_000;

async function evaluateSpf(domain: string, ip: string, server: ServerIdentity, lookup: SpfLookup) {
  // Loaded on the first check, not at start (mailauth's loading is a large share of the start-up time).
  const { spf } = await import("mailauth/lib/spf");
  const result = await spf({ sender: `postmaster@${domain}`, ip, helo: server.hostname, mta: server.hostname, resolver: lookup as never, maxElapsedTime: SPF_TIME_LIMIT_MS });
  // mailauth's comment ends with the reason of an error ("...: Too many DNS requests").
  const reason = result.status.comment?.split(": ").at(-1) ?? "";
  return { result: result.status.result, reason };
}

function spfError(result: string, reason: string): Judgement {
  if (result === "permerror") {
    const why = /too many dns requests/i.test(reason)
      ? "it needs more than 10 DNS lookups (include, a, mx, ptr, exists, redirect count; RFC 7208 §4.6.4): merge or remove includes"
      : reason;
    return { status: "invalid", note: `receivers get an SPF error (permerror): ${why}` };
  }
  return { status: "missing", note: `could not be evaluated (temperror): ${reason}` };
}

/**
 * RFC 7208 §4: evaluates the domain's SPF policy (includes, redirect, mx, a,
 * ip4/ip6, all, with the limit of 10 DNS-querying terms) for each of this
 * server's addresses; all must pass. Then for an address that is never a
 * sender: a policy that passes or shrugs at it protects nothing.
 */
export async function judgeSpf(domain: string, found: string[], server: ServerIdentity, lookup: SpfLookup): Promise<Judgement> {
  if (found.length === 0) return { status: "missing" };
  if (server.addresses.length === 0) return { status: "different", note: "cannot tell whether it authorizes this server: its host name has no address (see below)" };
  const results = await Promise.all(server.addresses.map(async (ip) => ({ ip, ...(await evaluateSpf(domain, ip, server, lookup)) })));
  const broken = results.find((r) => r.result === "permerror" || r.result === "temperror");
  if (broken) return spfError(broken.result, broken.reason);
  const refused = results.filter((r) => r.result !== "pass");
  if (refused.length) {
    return { status: "different", note: `does not authorize this server's address ${refused.map((r) => `${r.ip} (${r.result})`).join(", ")}: ${JSON.stringify(found.join(" "))}` };
  }
  const families = [...new Set(server.addresses.map((ip): keyof typeof DOCUMENTATION_ADDRESS => (ip.includes(":") ? "v6" : "v4")))];
  const strangers = await Promise.all(families.map((f) => evaluateSpf(domain, DOCUMENTATION_ADDRESS[f], server, lookup)));
  if (strangers.some((s) => s.result === "pass")) return { status: "weak", note: "authorizes this server, but also any other (+all): receivers cannot tell forged mail; end it with -all or ~all" };
  if (strangers.some((s) => s.result === "neutral" || s.result === "none")) {
    return { status: "weak", note: "authorizes this server, but says nothing about others (?all, or no all): receivers cannot tell forged mail; end it with -all or ~all" };
  }
  return { status: "ok" };
}
