// Where mail for a domain goes: its MX hosts by preference (RFC 5321 §5.1),
// the domain itself when it has no MX, nowhere for a null MX (RFC 7505).
// Addresses on loopback, private or link-local networks are left out unless
// outbound.allow_private: a sender's domain picks the MX its bounces and
// vacation replies go to, and must not point them into this server's network.
import { DnsError, type Resolver } from "../dns/resolver.ts";
import type { Reason } from "../mail/decision.ts";
import { type Reply, reply } from "../mail/reply.ts";
import { isPrivateAddress } from "../net/ssrf.ts";

export interface MxHost {
  name: string;
  /** IPv4 addresses first: a VPS without IPv6 connectivity still gets through. */
  addresses: string[];
}

/** A refusal carries a reason when the reply is ours rather than what DNS said of the domain. */
export type MxRoute = { hosts: MxHost[] } | { refuse: Reply; reason?: Reason };

export async function routeToDomain(domain: string, resolver: Resolver, allowPrivate: boolean): Promise<MxRoute> {
  let names: string[];
  try {
    const mx = await resolver.resolveMx(domain);
    if (mx.length === 1 && (mx[0]!.exchange === "" || mx[0]!.exchange === ".")) {
      return { refuse: reply(550, "5.1.10", `${domain} does not accept mail (null MX)`) };
    }
    // Equal preferences are shuffled to spread load, as RFC 5321 asks.
    names = mx
      .map((r) => ({ ...r, tie: Math.random() }))
      .sort((a, b) => a.priority - b.priority || a.tie - b.tie)
      .map((r) => r.exchange.toLowerCase());
  } catch (err) {
    if (!(err instanceof DnsError)) throw err;
    if (err.code === "ENOTFOUND") return { refuse: reply(550, "5.1.2", `domain ${domain} does not exist`) };
    if (err.code !== "ENODATA") return { refuse: reply(421, "4.4.3", `DNS lookup of MX for ${domain} failed (${err.code}), try again later`) };
    names = [domain];
  }

  let temporary = false;
  const hosts: MxHost[] = [];
  for (const name of [...new Set(names)]) {
    const addresses: string[] = [];
    for (const type of ["A", "AAAA"] as const) {
      try {
        addresses.push(...(await resolver.resolve(name, type)));
      } catch (err) {
        if (!(err instanceof DnsError)) throw err;
        if (!err.isNegative) temporary = true;
      }
    }
    if (addresses.length) hosts.push({ name, addresses });
  }
  const reachable = allowPrivate ? hosts : publicOnly(hosts);
  if (reachable.length) return { hosts: reachable };
  if (temporary) return { refuse: reply(421, "4.4.3", `DNS lookup of the mail hosts of ${domain} failed, try again later`) };
  if (hosts.length) {
    const addresses = hosts.flatMap((h) => h.addresses).join(", ");
    return { refuse: reply(550, "5.4.4", `the mail hosts of ${domain} are on loopback, private or link-local addresses (${addresses}); refused (outbound.allow_private is off)`), reason: "private_destination" };
  }
  return { refuse: reply(550, "5.4.4", `no mail host of ${domain} has an address`) };
}

/** The hosts with their public addresses only; a host left without any is dropped. */
export function publicOnly(hosts: MxHost[]): MxHost[] {
  return hosts.map((h) => ({ ...h, addresses: h.addresses.filter((a) => !isPrivateAddress(a)) })).filter((h) => h.addresses.length > 0);
}
