// Sends envelopes to their destinations in real time: recipients are grouped
// by where their mail goes (MX hosts and port), each group uses one
// connection carrying one transaction per envelope, and every recipient gets
// the destination's own reply - or a 421 when we could not get an answer.
// Connections stay open a few seconds for the next message (connection-cache.ts).
import type { Readable } from "node:stream";
import type { Config } from "../config/index.ts";
import type { Resolver } from "../dns/resolver.ts";
import type { Reason } from "../mail/decision.ts";
import { type Reply, reply } from "../mail/reply.ts";
import { connectionKey, createConnectionCache, REUSE_LIMITS, type ReuseLimits } from "./connection-cache.ts";
import type { MtaSts, StsPolicy } from "./mta-sts.ts";
import { type MxHost, type MxRoute, routeToDomain } from "./mx.ts";
import { type Connection, ConnectError, connect, type TlsMode } from "./smtp-client.ts";

export interface Envelope {
  /** Envelope sender (already SRS-rewritten); "" for the null sender. */
  from: string;
  to: { address: string; domain: string; port: number }[];
  /** A fresh stream of the complete message for each transaction. */
  message: () => Readable;
}

export interface DeliveryResult {
  envelope: Envelope;
  address: string;
  reply: Reply;
  /** Set when the reply is ours, not the destination's (e.g. an MX on a private address refused). */
  reason?: Reason;
  /** MX host name that answered, if one did. */
  mx: string | null;
  tls: string | null;
  /** The destination's MTA-STS policy as applied to this copy; null without one (or via a smarthost). */
  mtaSts: MtaStsState | null;
  durationMs: number;
}

/** RFC 8461 §5: the policy's mode, and whether the MX host that answered is listed in it (null when none answered). */
export interface MtaStsState {
  mode: StsPolicy["mode"];
  mx_matched: boolean | null;
}

/** Told each result as soon as it is known, before slower destinations answer. */
export type OnResult = (result: DeliveryResult) => Promise<void> | void;

export interface Relay {
  send(envelopes: Envelope[], onResult?: OnResult): Promise<DeliveryResult[]>;
  /** Closes the idle connections (at shutdown); later sends still work, on connections of their own. */
  close(): void;
}

export interface RelayDeps {
  config: Pick<Config, "hostname" | "outbound" | "smarthost">;
  resolver: Resolver;
  mtaSts: MtaSts;
  ca?: Buffer;
  /** How connections are reused (default REUSE_LIMITS; tests shorten them). */
  reuse?: ReuseLimits;
}

type MxRefusal = Extract<MxRoute, { refuse: Reply }> & { policy?: StsPolicy };
type Destination = { hosts: MxHost[]; tls: TlsMode; enforcedBy: string | null; policy: StsPolicy | null };

interface Group {
  hosts: MxHost[];
  port: number;
  tls: TlsMode;
  /** Why verified TLS is required, for the reply when it cannot be had. */
  enforcedBy: string | null;
  /** The destination's MTA-STS policy, for the record of each result. */
  policy: StsPolicy | null;
  auth?: { user: string; pass: string };
  items: { envelope: Envelope; address: string }[];
}

export function createRelay({ config, resolver, mtaSts, ca, reuse = REUSE_LIMITS }: RelayDeps): Relay {
  const commandTimeout = Math.min(config.outbound.messageTimeout, 120_000);
  const cache = createConnectionCache(reuse);
  const keyOf = (group: Group, hostName: string, address: string) => connectionKey(hostName, address, group.port, group.tls, group.auth?.user);

  async function plan(envelopes: Envelope[]): Promise<{ groups: Group[]; refused: DeliveryResult[] }> {
    const groups = new Map<string, Group>();
    const refused: DeliveryResult[] = [];
    const routes = new Map<string, Promise<Destination | MxRefusal>>();
    const routeFor = (domain: string) => {
      let route = routes.get(domain);
      if (!route) {
        route = destination(domain);
        routes.set(domain, route);
      }
      return route;
    };
    for (const envelope of envelopes) {
      for (const rcpt of envelope.to) {
        const route = await routeFor(rcpt.domain);
        if ("refuse" in route) {
          const mtaSts = route.policy ? { mode: route.policy.mode, mx_matched: false } : null;
          refused.push({ envelope, address: rcpt.address, reply: route.refuse, ...(route.reason ? { reason: route.reason } : {}), mx: null, tls: null, mtaSts, durationMs: 0 });
          continue;
        }
        const port = config.smarthost ? config.smarthost.port : rcpt.port;
        const key = `${port}|${route.tls}|${route.hosts.map((h) => h.name).join(",")}`;
        let group = groups.get(key);
        if (!group) {
          group = { hosts: route.hosts, port, tls: route.tls, enforcedBy: route.enforcedBy, policy: route.policy, items: [] };
          if (config.smarthost?.user) group.auth = { user: config.smarthost.user, pass: config.smarthost.password ?? "" };
          groups.set(key, group);
        }
        group.items.push({ envelope, address: rcpt.address });
      }
    }
    return { groups: [...groups.values()], refused };
  }

  async function destination(domain: string): Promise<Destination | MxRefusal> {
    const smarthost = config.smarthost;
    if (smarthost) {
      const route = await routeToHost(smarthost.host, resolver);
      if ("refuse" in route) return route;
      const tls: TlsMode = smarthost.tls === "implicit" ? "implicit" : smarthost.tls === "none" ? "none" : "required";
      return { hosts: route.hosts, tls, enforcedBy: tls === "required" ? `smarthost ${smarthost.host}` : null, policy: null };
    }
    const [route, policy] = await Promise.all([routeToDomain(domain, resolver, config.outbound.allowPrivate), mtaSts.policyFor(domain)]);
    if ("refuse" in route) return route;
    if (policy?.mode !== "enforce") return { hosts: route.hosts, tls: "opportunistic", enforcedBy: null, policy };
    const hosts = route.hosts.filter((h) => mtaSts.allows(policy, h.name));
    if (hosts.length === 0) return { refuse: reply(421, "4.7.5", `no mail host of ${domain} matches its MTA-STS policy`), policy };
    return { hosts, tls: "required", enforcedBy: `the MTA-STS policy of ${domain}`, policy };
  }

  /**
   * Tries the group's hosts and addresses in order, each by an idle connection to it if there
   * is one, else a new one; plain text once after a failed opportunistic TLS handshake.
   */
  async function open(group: Group): Promise<Connection | { failure: Reply }> {
    let last: Reply = reply(421, "4.4.1", "no mail host could be reached");
    for (const host of group.hosts) {
      for (const address of host.addresses) {
        const idle = await cache.take(keyOf(group, host.name, address));
        if (idle) return idle;
        const base = { address, port: group.port, hostName: host.name, ehloName: config.hostname, connectTimeout: config.outbound.connectTimeout, commandTimeout, ...(ca ? { ca } : {}), ...(group.auth ? { auth: group.auth } : {}) };
        try {
          return await connect({ ...base, tls: group.tls });
        } catch (err) {
          if (!(err instanceof ConnectError)) throw err;
          if (err.authFailure) {
            return { failure: reply(421, "4.3.0", `smarthost ${host.name} refused our credentials (${err.reply ? `${err.reply.code} ${err.reply.text}` : err.message}); check the smarthost settings`) };
          }
          if (err.tlsFailure && group.enforcedBy) {
            return { failure: reply(421, "4.7.5", `TLS with ${host.name} failed (${err.message}) and ${group.enforcedBy} requires it`) };
          }
          if (err.tlsFailure && group.tls === "opportunistic") {
            try {
              return await connect({ ...base, tls: "none" });
            } catch (retry) {
              if (!(retry instanceof ConnectError)) throw retry;
              last = retry.reply ?? reply(421, "4.4.1", `${host.name} [${address}]: ${retry.message}`);
              continue;
            }
          }
          last = err.reply ?? reply(421, "4.4.1", `${host.name} [${address}]: ${err.message}`);
        }
      }
    }
    // A host that refuses us at the greeting speaks for itself; anything else is worth a retry.
    return { failure: last.code >= 500 ? last : reply(421, last.enhanced.startsWith("4.") ? last.enhanced : "4.4.1", last.text) };
  }

  async function sendGroup(group: Group, report: OnResult): Promise<DeliveryResult[]> {
    const started = performance.now();
    const conn = await open(group);
    const elapsed = () => Math.round(performance.now() - started);
    const stsState = (mx: string | null): MtaStsState | null => group.policy && { mode: group.policy.mode, mx_matched: mx === null ? null : mtaSts.allows(group.policy, mx) };
    if ("failure" in conn) return reportAll(group.items.map((i) => ({ envelope: i.envelope, address: i.address, reply: conn.failure, mx: null, tls: null, mtaSts: stsState(null), durationMs: elapsed() })), report);
    const results: DeliveryResult[] = [];
    try {
      const byEnvelope = new Map<Envelope, string[]>();
      for (const item of group.items) byEnvelope.set(item.envelope, [...(byEnvelope.get(item.envelope) ?? []), item.address]);
      for (const [envelope, to] of byEnvelope) {
        const replies = await conn.send(envelope.from, to, envelope.message);
        const answered = to.map((address) => {
          const answer = replies.get(address) ?? reply(421, "4.4.2", `${conn.hostName} gave no reply for <${address}>`);
          return { envelope, address, reply: answer, mx: conn.hostName, tls: conn.tls, mtaSts: stsState(conn.hostName), durationMs: elapsed() };
        });
        results.push(...(await reportAll(answered, report)));
      }
    } finally {
      cache.release(keyOf(group, conn.hostName, conn.address), conn);
    }
    return results;
  }

  return {
    async send(envelopes, onResult = () => {}) {
      const { groups, refused } = await plan(envelopes);
      await reportAll(refused, onResult);
      const sent = await Promise.all(groups.map((group) => sendGroup(group, onResult)));
      return [...refused, ...sent.flat()];
    },
    close: () => cache.close(),
  };
}

async function reportAll(results: DeliveryResult[], report: OnResult): Promise<DeliveryResult[]> {
  for (const result of results) await report(result);
  return results;
}

/** A single named host (a smarthost): its addresses, or the host itself when it is an IP. */
export async function routeToHost(host: string, resolver: Resolver): Promise<{ hosts: MxHost[] } | { refuse: Reply }> {
  if (/^[\d.]+$/.test(host) || host.includes(":")) return { hosts: [{ name: host, addresses: [host] }] };
  const addresses = await resolver.resolve(host, "A").catch(() => [] as string[]);
  if (addresses.length === 0) return { refuse: reply(421, "4.4.3", `smarthost ${host} has no address`) };
  return { hosts: [{ name: host, addresses }] };
}
