// MTA-STS (RFC 8461): a destination domain can require verified TLS to its
// listed MX hosts. mailauth discovers the policy id and parses the policy;
// the policy file is fetched here, through mailferry's own resolver, and
// cached for its max_age. A policy host on a loopback, private or link-local
// address is not fetched unless outbound.allow_private (the sender's domain
// names it, as it names its MX hosts: mx.ts).
import https from "node:https";
import type { Resolver } from "../dns/resolver.ts";
import { isPrivateAddress } from "../net/ssrf.ts";

export interface StsPolicy {
  id: string;
  mode: "enforce" | "testing" | "none";
  mx: string[];
  /** Epoch ms after which the policy is no longer applied. */
  expires: number;
}

export interface MtaSts {
  /** The policy in force for a domain, or null when it has none (or none could be fetched and none is cached). */
  policyFor(domain: string): Promise<StsPolicy | null>;
  /** Whether an MX host name is allowed by the policy. */
  allows(policy: StsPolicy, mxHost: string): boolean;
}

export interface MtaStsOptions {
  resolver: Resolver;
  port: number;
  /** outbound.allow_private: fetch from policy hosts on private addresses too. */
  allowPrivate: boolean;
  ca?: Buffer;
  timeout?: number;
  now?: () => number;
}

const MAX_POLICY_BYTES = 65_536;

export function createMtaSts({ resolver, port, allowPrivate, ca, timeout = 10_000, now = Date.now }: MtaStsOptions): MtaSts {
  const cache = new Map<string, StsPolicy>();

  async function fetchPolicyFile(domain: string): Promise<string> {
    const host = `mta-sts.${domain}`;
    const [address] = await resolver.resolve(host, "A");
    if (!address) throw new Error(`${host} has no address`);
    if (!allowPrivate && isPrivateAddress(address)) throw new Error(`${host} is on a private address (${address}), not fetched`);
    return new Promise((resolve, reject) => {
      const req = https.request(
        { host: address, port, servername: host, path: "/.well-known/mta-sts.txt", method: "GET", headers: { host }, timeout, rejectUnauthorized: true, ...(ca ? { ca } : {}) },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            return reject(new Error(`policy fetch answered HTTP ${res.statusCode}`));
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_POLICY_BYTES) req.destroy(new Error("policy file too large"));
            else chunks.push(chunk);
          });
          res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error("policy fetch timed out")));
      req.on("error", reject);
      req.end();
    });
  }

  // mailauth's MTA-STS code loads with the first delivery, not at start (with its helpers it
  // is a large share of the start-up time); every policy comes from policyFor, so `allows` has it.
  let sts: typeof import("mailauth/lib/mta-sts") | undefined;

  return {
    async policyFor(domain) {
      const { resolvePolicy, parsePolicy } = (sts ??= await import("mailauth/lib/mta-sts"));
      const cached = cache.get(domain);
      const valid = cached && cached.expires > now() ? cached : null;
      let id: string | false;
      try {
        id = await resolvePolicy(domain, { resolver: resolver.forMailauth });
      } catch {
        return valid; // DNS trouble: a cached policy still applies (RFC 8461 §5.1)
      }
      if (!id) return valid;
      if (valid && valid.id === id) return valid;
      try {
        const parsed = parsePolicy(await fetchPolicyFile(domain));
        const mode = parsed.mode === "enforce" || parsed.mode === "testing" ? parsed.mode : "none";
        const policy: StsPolicy = { id, mode, mx: parsed.mx ?? [], expires: now() + Math.min(Number(parsed.maxAge) || 86_400, 31_557_600) * 1000 };
        cache.set(domain, policy);
        return policy;
      } catch {
        return valid;
      }
    },
    allows(policy, mxHost) {
      return sts!.validateMx(mxHost, { mode: policy.mode, mx: policy.mx } as never).valid;
    },
  };
}
