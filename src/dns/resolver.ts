// The one DNS resolver of mailferry: MX lookup, SPF/DKIM/DMARC (through
// mailauth's `resolver` option), PTR and MTA-STS all go through it.
//
// A stub resolver over UDP with TCP fallback on truncation, built on dns-packet
// rather than node:dns because Bun's node:dns splits a TXT record made of
// several strings (every 2048-bit DKIM key) into separate records.
// Errors carry node:dns codes (ENOTFOUND, ENODATA, ESERVFAIL, ETIMEOUT, …)
// because mailauth and callers decide "none" versus "temporary error" by them.
import { randomInt } from "node:crypto";
import dgram from "node:dgram";
import net from "node:net";
import { domainToASCII } from "node:url";
import * as packet from "dns-packet";
import type { HostPort } from "../config/values.ts";

export type RecordType = "A" | "AAAA" | "MX" | "TXT" | "PTR" | "CNAME" | "NS";
const SUPPORTED = new Set<RecordType>(["A", "AAAA", "MX", "TXT", "PTR", "CNAME", "NS"]);
export interface MxRecord {
  exchange: string;
  priority: number;
}
interface Shapes {
  A: string[];
  AAAA: string[];
  MX: MxRecord[];
  TXT: string[][];
  PTR: string[];
  CNAME: string[];
  NS: string[];
}

export type DnsErrorCode = "ENOTFOUND" | "ENODATA" | "ESERVFAIL" | "ETIMEOUT" | "EREFUSED" | "ECONNREFUSED" | "EBADRESP" | "EBADNAME";

export class DnsError extends Error {
  constructor(
    readonly code: DnsErrorCode,
    readonly hostname: string,
    readonly rrtype: string,
  ) {
    super(`query ${rrtype} ${hostname}: ${code}`);
  }
  /** True when the name or record does not exist: a definite answer, not a failure. */
  get isNegative(): boolean {
    return this.code === "ENOTFOUND" || this.code === "ENODATA";
  }
}

export interface ResolverOptions {
  servers: HostPort[];
  /** Milliseconds to wait for one server's answer. */
  timeout: number;
  /** Rounds over the server list before giving up on timeouts. */
  attempts?: number;
  /** 0 turns caching off (live checks of what is published right now). */
  maxCacheEntries?: number;
  /** Injected clock, in milliseconds, so cache expiry is testable without sleeping. */
  now?: () => number;
}

export interface Resolver {
  resolve<T extends RecordType>(name: string, type: T): Promise<Shapes[T]>;
  resolveMx(name: string): Promise<MxRecord[]>;
  resolveTxt(name: string): Promise<string[][]>;
  reverse(ip: string): Promise<string[]>;
  /** The `resolver` option of mailauth: `dns.promises.resolve`'s signature and result shapes. */
  forMailauth: (name: string, rrtype: string) => Promise<string[][] | string[]>;
  /** Number of queries sent to servers (cache misses), for tests and metrics. */
  readonly queriesSent: number;
  clearCache(): void;
}

interface CacheEntry {
  expires: number;
  records?: unknown;
  error?: DnsError;
}

// Negative answers are cached briefly even without a SOA, positive ones no longer than a day.
const NEGATIVE_TTL_DEFAULT = 60;
const NEGATIVE_TTL_MAX = 300;
const POSITIVE_TTL_MAX = 86_400;
const MAX_CNAME_HOPS = 8;
const EDNS_UDP_SIZE = 1232;

export function createResolver(opts: ResolverOptions): Resolver {
  const { servers, timeout, attempts = 2, maxCacheEntries = 10_000, now = Date.now } = opts;
  const cache = new Map<string, CacheEntry>();
  const inflight = new Map<string, Promise<unknown>>();
  let queriesSent = 0;

  async function lookup(name: string, type: RecordType, hops = 0): Promise<unknown> {
    const qname = normalizeName(name, type);
    const key = `${type} ${qname}`;
    const hit = cache.get(key);
    if (hit && hit.expires > now()) {
      if (hit.error) throw hit.error;
      return hit.records;
    }
    const pending = inflight.get(key);
    if (pending) return pending;
    const job = (async () => {
      const response = await ask(qname, type);
      const { records, ttl, cname, error } = interpret(response, qname, type);
      if (records) {
        remember(key, { expires: now() + ttl * 1000, records });
        return records;
      }
      if (cname && hops < MAX_CNAME_HOPS) return lookup(cname, type, hops + 1);
      remember(key, { expires: now() + ttl * 1000, error: error! });
      throw error;
    })().finally(() => inflight.delete(key));
    inflight.set(key, job);
    return job;
  }

  function remember(key: string, entry: CacheEntry) {
    if (entry.expires <= now() || maxCacheEntries === 0) return;
    cache.delete(key);
    if (cache.size >= maxCacheEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, entry);
  }

  async function ask(qname: string, type: RecordType): Promise<packet.DecodedPacket> {
    let lastError = new DnsError("ETIMEOUT", qname, type);
    for (let round = 0; round < attempts; round++) {
      for (const server of servers) {
        try {
          queriesSent++;
          const response = await exchange(server, qname, type, timeout);
          const rcode = (response as { rcode?: string }).rcode;
          if (rcode === "SERVFAIL" || rcode === "REFUSED") {
            lastError = new DnsError(rcode === "SERVFAIL" ? "ESERVFAIL" : "EREFUSED", qname, type);
            continue;
          }
          return response;
        } catch (err) {
          lastError = err instanceof DnsError ? err : new DnsError("ECONNREFUSED", qname, type);
        }
      }
      // Only silence is worth asking again; a server that answered with an error has spoken.
      if (lastError.code !== "ETIMEOUT") break;
    }
    throw lastError;
  }

  return {
    resolve: (name, type) => lookup(name, type) as never,
    resolveMx: (name) => lookup(name, "MX") as Promise<MxRecord[]>,
    resolveTxt: (name) => lookup(name, "TXT") as Promise<string[][]>,
    reverse: (ip) => lookup(reverseName(ip), "PTR") as Promise<string[]>,
    forMailauth: (name, rrtype) => {
      if (!SUPPORTED.has(rrtype as RecordType)) return Promise.reject(new DnsError("EBADRESP", name, rrtype));
      return lookup(name, rrtype as RecordType) as Promise<string[][] | string[]>;
    },
    get queriesSent() {
      return queriesSent;
    },
    clearCache: () => cache.clear(),
  };
}

function normalizeName(name: string, type: string): string {
  const trimmed = name.trim().replace(/\.$/, "").toLowerCase();
  const ascii = /^[\x00-\x7f]*$/.test(trimmed) ? trimmed : domainToASCII(trimmed);
  if (!ascii || ascii.length > 253 || ascii.split(".").some((l) => l.length === 0 || l.length > 63)) {
    throw new DnsError("EBADNAME", name, type);
  }
  return ascii;
}

interface Interpretation {
  records?: unknown;
  ttl: number;
  cname?: string;
  error?: DnsError;
}

function interpret(response: packet.DecodedPacket, qname: string, type: RecordType): Interpretation {
  const rcode = (response as { rcode?: string }).rcode;
  const answers = (response.answers ?? []) as (packet.Answer & { ttl?: number; data?: unknown })[];
  if (rcode === "NOERROR") {
    const matching = answers.filter((a) => a.type === type);
    if (matching.length > 0) {
      const ttl = Math.min(POSITIVE_TTL_MAX, ...matching.map((a) => a.ttl ?? 0));
      return { records: matching.map((a) => shape(type, a.data)), ttl };
    }
    const cname = answers.find((a) => a.type === "CNAME");
    if (cname) return { cname: String(cname.data), ttl: 0 };
    return { error: new DnsError("ENODATA", qname, type), ttl: negativeTtl(response) };
  }
  if (rcode === "NXDOMAIN") return { error: new DnsError("ENOTFOUND", qname, type), ttl: negativeTtl(response) };
  return { error: new DnsError("EBADRESP", qname, type), ttl: 0 };
}

function negativeTtl(response: packet.DecodedPacket): number {
  const soa = (response.authorities ?? []).find((a) => a.type === "SOA") as packet.SoaAnswer | undefined;
  if (!soa) return NEGATIVE_TTL_DEFAULT;
  return Math.min(NEGATIVE_TTL_MAX, soa.ttl ?? 0, soa.data.minimum ?? 0);
}

function shape(type: RecordType, data: unknown): unknown {
  switch (type) {
    case "MX": {
      const mx = data as { exchange: string; preference: number };
      return { exchange: mx.exchange.replace(/\.$/, ""), priority: mx.preference };
    }
    case "TXT": {
      // One record = all its character-strings, kept together (DKIM keys span several).
      const parts = Array.isArray(data) ? data : [data];
      return parts.map((p: Buffer | string) => (typeof p === "string" ? p : p.toString("utf8")));
    }
    default:
      return String(data).replace(/\.$/, "");
  }
}

/** The in-addr.arpa / ip6.arpa name for an IP address. */
export function reverseName(ip: string): string {
  if (net.isIPv4(ip)) return ip.split(".").reverse().join(".") + ".in-addr.arpa";
  if (net.isIPv6(ip)) return expandIPv6(ip).replaceAll(":", "").split("").reverse().join(".") + ".ip6.arpa";
  throw new DnsError("EBADNAME", ip, "PTR");
}

/** The name a DNS blocklist answers for `ip` (RFC 5782 §2.1): the reversed address under the zone. */
export const dnsblQueryName = (ip: string, zone: string): string => `${reverseName(ip).replace(/\.(in-addr|ip6)\.arpa$/, "")}.${zone}`;

/** Full 8-group, zero-padded form of an IPv6 address (also handles embedded IPv4). */
export function expandIPv6(ip: string): string {
  let addr = ip.toLowerCase().replace(/%.*$/, "");
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split(".").map(Number) as [number, number, number, number];
    addr = addr.slice(0, -v4[1]!.length) + ((a << 8) | b).toString(16) + ":" + ((c << 8) | d).toString(16);
  }
  const [head, tail] = addr.split("::") as [string, string | undefined];
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : Array(8 - headGroups.length - tailGroups.length).fill("0");
  return [...headGroups, ...fill, ...tailGroups].map((g) => g.padStart(4, "0")).join(":");
}

function query(qname: string, type: RecordType): { id: number; bytes: Buffer } {
  const id = randomInt(0, 65536);
  const bytes = packet.encode({
    type: "query",
    id,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type, name: qname }],
    additionals: [{ type: "OPT", name: ".", udpPayloadSize: EDNS_UDP_SIZE } as packet.Answer],
  });
  return { id, bytes };
}

/** A response belongs to our query only if id and question match (anti-spoofing). */
function matches(response: packet.DecodedPacket, id: number, qname: string, type: RecordType): boolean {
  const q = response.questions?.[0];
  return response.id === id && response.type === "response" && !!q && q.type === type && q.name.toLowerCase().replace(/\.$/, "") === qname;
}

function exchange(server: HostPort, qname: string, type: RecordType, timeout: number): Promise<packet.DecodedPacket> {
  return udpExchange(server, qname, type, timeout).then((response) => (response.flag_tc ? tcpExchange(server, qname, type, timeout) : response));
}

type Finish = (err: DnsError | null, response?: packet.DecodedPacket) => void;

/**
 * One query over one transport: `run` sends and calls `finish` with the
 * outcome; `finish` settles once, after the timeout at the latest, and
 * releases the socket through `close`.
 */
function transact(timeout: number, timeoutError: DnsError, run: (finish: Finish) => { close(): void }): Promise<packet.DecodedPacket> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let socket: { close(): void } | undefined;
    const finish: Finish = (err, response) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.close();
      if (err) reject(err);
      else resolve(response!);
    };
    const timer = setTimeout(() => finish(timeoutError), timeout);
    socket = run(finish);
    if (settled) socket.close();
  });
}

function udpExchange(server: HostPort, qname: string, type: RecordType, timeout: number): Promise<packet.DecodedPacket> {
  const { id, bytes } = query(qname, type);
  return transact(timeout, new DnsError("ETIMEOUT", qname, type), (finish) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? "udp6" : "udp4");
    socket.on("error", () => finish(new DnsError("ECONNREFUSED", qname, type)));
    socket.on("message", (msg, rinfo) => {
      if (rinfo.port !== server.port) return;
      let response: packet.DecodedPacket;
      try {
        response = packet.decode(msg);
      } catch {
        return; // garbage on our port: keep waiting for the real answer
      }
      if (matches(response, id, qname, type)) finish(null, response);
    });
    socket.send(bytes, server.port, server.host);
    return { close: () => socket.close() };
  });
}

function tcpExchange(server: HostPort, qname: string, type: RecordType, timeout: number): Promise<packet.DecodedPacket> {
  const { id, bytes } = query(qname, type);
  return transact(timeout, new DnsError("ETIMEOUT", qname, type), (finish) => {
    const socket = net.connect({ host: server.host, port: server.port });
    let buffered = Buffer.alloc(0);
    socket.on("connect", () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(bytes.length);
      socket.write(Buffer.concat([length, bytes]));
    });
    socket.on("error", () => finish(new DnsError("ECONNREFUSED", qname, type)));
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2) return;
      const size = buffered.readUInt16BE(0);
      if (buffered.length < 2 + size) return;
      try {
        const response = packet.decode(buffered.subarray(2, 2 + size));
        finish(matches(response, id, qname, type) ? null : new DnsError("EBADRESP", qname, type), response);
      } catch {
        finish(new DnsError("EBADRESP", qname, type));
      }
    });
    socket.on("end", () => finish(new DnsError("EBADRESP", qname, type)));
    return { close: () => socket.destroy() };
  });
}
