// Where mail for a domain goes: its MX hosts by preference (RFC 5321 §5.1),
// the domain itself when it has no MX, nowhere for a null MX (RFC 7505).
import { DnsError, type Resolver } from "../dns/resolver.ts";
import { type Reply, reply } from "../mail/reply.ts";

export interface MxHost {
  name: string;
  /** IPv4 addresses first: a VPS without IPv6 connectivity still gets through. */
  addresses: string[];
}

export type MxRoute = { hosts: MxHost[] } | { refuse: Reply };

export async function routeToDomain(domain: string, resolver: Resolver): Promise<MxRoute> {
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
  if (hosts.length) return { hosts };
  if (temporary) return { refuse: reply(421, "4.4.3", `DNS lookup of the mail hosts of ${domain} failed, try again later`) };
  return { refuse: reply(550, "5.4.4", `no mail host of ${domain} has an address`) };
}
