// Who is connecting, as far as DNS can prove it (docs/delivery-and-authentication.md,
// "Abuse protection"): the sender key is the registrable domain of the
// client's forward-confirmed reverse-DNS name, else its IP (an IPv6 client by
// its /64, which one customer usually holds).
import net from "node:net";
import { getDomain } from "tldts";
import { expandIPv6, type Resolver } from "../dns/resolver.ts";
import { ALLOWED_SUFFIXES } from "./suffixes.ts";

export interface ClientIdentity {
  /** First PTR name, whether or not it confirms (for logs and Received headers). */
  ptr: string | null;
  /** A PTR name whose A/AAAA records include the client IP (FCrDNS), else null. */
  verifiedHost: string | null;
  key: string;
}

export async function identifyClient(ip: string, resolver: Resolver): Promise<ClientIdentity> {
  const names = await resolver.reverse(ip).catch(() => [] as string[]);
  let verifiedHost: string | null = null;
  for (const name of names.slice(0, 5)) {
    const type = net.isIPv6(ip) ? "AAAA" : "A";
    const addresses = await resolver.resolve(name, type).catch(() => [] as string[]);
    if (addresses.some((a) => sameIp(a, ip))) {
      verifiedHost = name.toLowerCase();
      break;
    }
  }
  return { ptr: names[0]?.toLowerCase() ?? null, verifiedHost, key: senderKey(ip, verifiedHost) };
}

export function senderKey(ip: string, verifiedHost: string | null): string {
  const root = verifiedHost ? getDomain(verifiedHost, { allowPrivateDomains: true }) : null;
  if (root) return root;
  if (net.isIPv6(ip)) return `${expandIPv6(ip).split(":").slice(0, 4).join(":")}::/64`;
  return ip;
}

/** The registrable ("root") domain of a name, public-suffix aware: a.b.example.co.uk → example.co.uk. */
export function rootDomain(name: string): string {
  return getDomain(name, { allowPrivateDomains: true }) ?? name.toLowerCase();
}

/** A verified name under a default-allowlisted suffix (gov, edu, gov.uk, …). */
export function hasAllowedSuffix(verifiedHost: string | null): boolean {
  if (!verifiedHost) return false;
  const labels = verifiedHost.toLowerCase().split(".");
  return labels.some((_, i) => i > 0 && ALLOWED_SUFFIXES.has(labels.slice(i).join(".")));
}

function sameIp(a: string, b: string): boolean {
  if (net.isIPv6(a) && net.isIPv6(b)) return expandIPv6(a) === expandIPv6(b);
  return a === b.replace(/^::ffff:/, "");
}
