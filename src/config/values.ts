// Parsers for configuration values. Each accepts what TOML gives (typed values)
// and what the environment and flags give (strings), and throws a ValueError
// saying what was expected; the loader adds which key and source were wrong.
import { isIP } from "node:net";
import { normalizeDomain } from "../mail/domain.ts";

export class ValueError extends Error {}

export interface HostPort {
  host: string;
  port: number;
}

export function port(raw: unknown): number {
  const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ValueError("must be an integer from 0 to 65535 (0 picks a free port)");
  return n;
}

export function listenHost(raw: unknown): string {
  const s = text(raw);
  if (isIP(s) === 0 && s !== "localhost") throw new ValueError("must be an IP address to listen on (e.g. 127.0.0.1, 0.0.0.0, ::)");
  return s;
}

export function text(raw: unknown): string {
  if (typeof raw !== "string" || raw.trim() === "") throw new ValueError("must be a non-empty string");
  return raw.trim();
}

export function optionalPath(raw: unknown): string | null {
  if (raw === "" || raw === null || raw === undefined) return null;
  return text(raw);
}

/** A fully qualified host name as used in the SMTP banner, HELO and Received headers. */
export function hostname(raw: unknown): string {
  const ascii = normalizeDomain(text(raw));
  if (!ascii) throw new ValueError("must be a host name such as mx.example.com");
  return ascii;
}

export function optionalHostname(raw: unknown): string | null {
  return raw === "" || raw === null || raw === undefined ? null : hostname(raw);
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** Byte sizes: an integer, or a number with a unit such as `50MB` or `512k`. */
export function byteSize(raw: unknown): number {
  if (typeof raw === "number" && Number.isInteger(raw) && raw > 0) return raw;
  const m = typeof raw === "string" ? /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw) : null;
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) throw new ValueError("must be a positive size such as 52428800, 50MB or 512KB");
  return Math.floor(Number(m[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, "": 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Durations in milliseconds; plain numbers are seconds, or use a unit: `500ms`, `5s`, `3m`, `1h`, `7d`. */
export function duration(raw: unknown): number {
  if (typeof raw === "number" && raw >= 0 && Number.isFinite(raw)) return Math.round(raw * 1000);
  const m = typeof raw === "string" ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|)\s*$/i.exec(raw) : null;
  if (!m) throw new ValueError("must be a duration such as 30 (seconds), 500ms, 5s, 3m or 1h");
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!);
}

/** Milliseconds in the largest whole unit: 300000 → "5m", 604800000 → "7d". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

export function positiveDuration(raw: unknown): number {
  const ms = duration(raw);
  if (ms <= 0) throw new ValueError("must be a duration greater than zero");
  return ms;
}

const DURATION_PARSERS = new Set<(raw: unknown) => unknown>([duration, positiveDuration]);

/** Whether values of this parser are durations, shown as `config check` prints them ("3m"). */
export const parsesDuration = (parse: (raw: unknown) => unknown): boolean => DURATION_PARSERS.has(parse);

/** A parser of durations from 0 up to `max` milliseconds (for pauses where a long one does harm). */
export function durationUpTo(max: number): (raw: unknown) => number {
  const parse = (raw: unknown): number => {
    const ms = duration(raw);
    if (ms > max) throw new ValueError(`must be a duration from 0 to ${formatDuration(max)}`);
    return ms;
  };
  DURATION_PARSERS.add(parse);
  return parse;
}

/** `host:port`, `[v6]:port` or a bare host (port 53), as a comma list or a TOML array. */
export function dnsServers(raw: unknown): HostPort[] {
  const items = Array.isArray(raw) ? raw : typeof raw === "string" ? raw.split(",") : null;
  if (!items) throw new ValueError("must be a comma-separated list such as 127.0.0.1:5353,[::1]:53");
  const servers = items.map((item) => {
    if (typeof item !== "string") throw new ValueError("each DNS server must be a string such as 127.0.0.1:53");
    return hostPort(item.trim(), 53);
  });
  if (servers.length === 0) throw new ValueError("must name at least one DNS server");
  return servers;
}

function hostPort(item: string, defaultPort: number): HostPort {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(item) ?? /^([^:]+)(?::(\d+))?$/.exec(item) ?? /^([0-9a-f:]+)$/i.exec(item);
  const host = m?.[1];
  if (!host || isIP(host) === 0) throw new ValueError(`"${item}" is not an IP address with optional port (e.g. 127.0.0.1:5353 or [::1]:53)`);
  return { host, port: m[2] === undefined ? defaultPort : port(m[2]) };
}

export function oneOf<T extends string>(choices: readonly T[]) {
  return (raw: unknown): T => {
    const s = typeof raw === "string" ? raw.trim().toLowerCase() : "";
    if (!(choices as readonly string[]).includes(s)) throw new ValueError(`must be one of: ${choices.join(", ")}`);
    return s as T;
  };
}

export function bool(raw: unknown): boolean {
  if (typeof raw === "boolean") return raw;
  const s = typeof raw === "string" ? raw.trim().toLowerCase() : "";
  if (["true", "yes", "on", "1"].includes(s)) return true;
  if (["false", "no", "off", "0"].includes(s)) return false;
  throw new ValueError("must be true or false");
}

/** An http(s) URL, or null when empty. */
export function optionalUrl(raw: unknown): string | null {
  if (raw === "" || raw === null || raw === undefined) return null;
  try {
    const url = new URL(text(raw));
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
  } catch {
    // fall through to the error
  }
  throw new ValueError("must be an http(s) URL such as http://127.0.0.1:11333");
}

/** A PostgreSQL connection URL (postgres://user:pass@host:port/db), or null when empty (SQLite in the data directory). */
export function optionalDatabaseUrl(raw: unknown): string | null {
  if (raw === "" || raw === null || raw === undefined) return null;
  const example = "postgres://user:password@127.0.0.1:5432/mailferry";
  let url: URL;
  try {
    url = new URL(text(raw));
  } catch {
    throw new ValueError(`must be a PostgreSQL URL such as ${example}, or empty for SQLite in the data directory`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") throw new ValueError(`must start with postgres:// (such as ${example}); empty means SQLite in the data directory`);
  if (url.hostname === "" || url.pathname.length <= 1) throw new ValueError(`must name a host and a database, such as ${example}`);
  return url.href;
}

export function positiveInt(raw: unknown): number {
  const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n <= 0) throw new ValueError("must be a positive integer");
  return n;
}

/** A whole number from 0 to max. */
export function countUpTo(max: number): (raw: unknown) => number {
  return (raw) => {
    const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > max) throw new ValueError(`must be a whole number from 0 to ${max}`);
    return n;
  };
}

/** A shared secret sent in a header (a bearer token): empty for none, else 16 or more visible characters without spaces. */
export function optionalToken(raw: unknown): string | null {
  if (raw === "" || raw === null || raw === undefined) return null;
  if (typeof raw !== "string" || !/^[\x21-\x7e]{16,}$/.test(raw)) throw new ValueError("must be at least 16 visible ASCII characters without spaces (e.g. from `openssl rand -hex 24`)");
  return raw;
}
