// What `mailferry doctor` looks at, gathered without changing anything
// (except a test file made and removed in the data dir). Every network probe
// is bounded by a short timeout, so doctor always finishes within seconds.
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { dirname, join } from "node:path";
import { healthUrl, readHealth } from "./health.ts";
import type { Config } from "../config/index.ts";
import { routeToDomain } from "../delivery/mx.ts";
import { routeToHost } from "../delivery/relay.ts";
import { createResolver, DnsError, type Resolver } from "../dns/resolver.ts";
import { DATABASE_FILE, postgresMigrations } from "../store/db.ts";
import { withoutPassword } from "../store/postgres.ts";
import { withReadOnlyDatabase } from "../store/snapshot.ts";
import { appliedMigrations, schemaStatus } from "../store/versions.ts";
import { CERT_FILE as ACME_CERT_FILE } from "../tls/acme.ts";
import { SELF_SIGNED_CERT } from "../tls/credentials.ts";
import type { BindOutcome, CertificateFacts, ClockFacts, DatabaseFacts, DataDirFacts, DnsFacts, OutboundFacts, RunningMailferry } from "./findings.ts";

/** A domain whose MX hosts always listen on port 25: reaching one shows outbound SMTP is open. */
export const OUTBOUND_PROBE_DOMAIN = "gmail.com";
const PROBE_TIMEOUT_MS = 5000;
const HEALTH_TIMEOUT_MS = 2000;
const DNS_TIMEOUT_MS = 3000;

/** A resolver for doctor: the configured servers, no cache, one round of short tries. */
export function probeResolver(config: Config, servers = config.dns.servers): Resolver {
  return createResolver({ servers, timeout: Math.min(config.dns.timeout, DNS_TIMEOUT_MS), attempts: 1, maxCacheEntries: 0 });
}

export function bindOutcome(host: string, port: number): Promise<BindOutcome> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", (err: NodeJS.ErrnoException) => {
      const known: Record<string, BindOutcome> = { EADDRINUSE: "in_use", EACCES: "denied", EADDRNOTAVAIL: "unavailable" };
      resolve(known[err.code ?? ""] ?? { failed: err.message });
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve("free")));
  });
}

/** The mailferry answering the configured admin port, if one does. */
export async function runningMailferry(config: Config): Promise<RunningMailferry | null> {
  try {
    const { body } = await readHealth(healthUrl(config), HEALTH_TIMEOUT_MS);
    if (typeof body?.status !== "string" || typeof body.version !== "string") return null;
    return { status: body.status, version: body.version, smtpPort: typeof body.smtp?.port === "number" ? body.smtp.port : null };
  } catch {
    return null;
  }
}

/** Connects where mail would go first: the smarthost, else an MX host of OUTBOUND_PROBE_DOMAIN on outbound.port. */
export async function outboundFacts(config: Config, resolver: Resolver): Promise<OutboundFacts> {
  const target = config.smarthost ? `smarthost ${config.smarthost.host}` : `MX of ${OUTBOUND_PROBE_DOMAIN}`;
  const port = config.smarthost ? config.smarthost.port : config.outbound.port;
  let route;
  try {
    route = config.smarthost ? await routeToHost(config.smarthost.host, resolver) : await routeToDomain(OUTBOUND_PROBE_DOMAIN, resolver, config.outbound.allowPrivate);
  } catch (err) {
    return { target, address: null, outcome: { failed: (err as Error).message } };
  }
  if ("refuse" in route) return { target, address: null, outcome: { failed: route.refuse.text } };
  const host = route.hosts[0]!;
  const address = host.addresses[0]!;
  return { target: `${target}: ${host.name}`, address: `${address.includes(":") ? `[${address}]` : address}:${port}`, ...(await probeSmtp(address, port)) };
}

/** Connects and waits for the greeting line; a server that says nothing (implicit TLS) still counts as reached. */
function probeSmtp(host: string, port: number): Promise<Pick<OutboundFacts, "outcome" | "greeting">> {
  return new Promise((resolve) => {
    let connected = false;
    let done = false;
    let received = "";
    const socket = net.connect({ host, port });
    const finish = (result: Pick<OutboundFacts, "outcome" | "greeting">) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeAllListeners("data");
      if (connected && !socket.destroyed) socket.end("QUIT\r\n");
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ outcome: connected ? "connected" : "timeout" }), PROBE_TIMEOUT_MS);
    socket.on("connect", () => (connected = true));
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      const line = received.split("\r\n")[0]!;
      if (received.includes("\n")) finish({ outcome: "answered", greeting: line.trim().slice(0, 200) });
    });
    socket.on("error", (err: NodeJS.ErrnoException) => finish({ outcome: err.code === "ECONNREFUSED" ? "refused" : { failed: err.code ?? err.message } }));
    socket.on("close", () => finish({ outcome: connected ? "connected" : "refused" }));
  });
}

/** Each configured server asked on its own for the hostname's A record. */
export function dnsFacts(config: Config): Promise<DnsFacts[]> {
  return Promise.all(
    config.dns.servers.map(async (server): Promise<DnsFacts> => {
      const name = `${server.host.includes(":") ? `[${server.host}]` : server.host}:${server.port}`;
      try {
        const addresses = await probeResolver(config, [server]).resolve(config.hostname, "A");
        return { server: name, hostname: config.hostname, answer: { addresses } };
      } catch (err) {
        if (!(err instanceof DnsError)) return { server: name, hostname: config.hostname, answer: { failed: (err as Error).message } };
        return { server: name, hostname: config.hostname, answer: err.isNegative ? { negative: err.code } : { failed: err.code } };
      }
    }),
  );
}

export function clockFacts(): ClockFacts {
  let builtAt: number | null = null;
  try {
    builtAt = statSync(process.execPath).mtimeMs;
  } catch {
    // unknown
  }
  return { now: Date.now(), builtAt, ntp: ntpState() };
}

function ntpState(): ClockFacts["ntp"] {
  // systemd-timesyncd touches this file once it has synchronized.
  if (existsSync("/run/systemd/timesync/synchronized")) return "synchronized";
  const result = spawnSync("timedatectl", ["show", "--property=NTPSynchronized", "--value"], { encoding: "utf8", timeout: 2000 });
  const answer = result.status === 0 ? result.stdout.trim() : "";
  return answer === "yes" ? "synchronized" : answer === "no" ? "unsynchronized" : "unknown";
}

export function dataDirFacts(path: string): DataDirFacts {
  const uid = process.getuid?.() ?? -1;
  const stat = existsSync(path) ? statSync(path) : null;
  if (!stat?.isDirectory()) return { path, stat: null, writeError: null, uid };
  let writeError: string | null = null;
  const probe = join(path, `.doctor-${process.pid}`);
  try {
    writeFileSync(probe, "", { flag: "wx", mode: 0o600 });
    rmSync(probe);
  } catch (err) {
    writeError = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
  return { path, stat: { uid: stat.uid, mode: stat.mode }, writeError, uid };
}

/** The configured database: PostgreSQL ([database] url) or the SQLite file in the data dir. */
export async function databaseFacts(config: Config): Promise<DatabaseFacts> {
  const url = config.database.url;
  if (!url) return sqliteFacts(config.dataDir);
  try {
    return { path: withoutPassword(url), engine: "postgresql", state: { quickCheck: null, schema: schemaStatus(await postgresMigrations(url)) } };
  } catch (err) {
    return { path: withoutPassword(url), engine: "postgresql", state: { failed: (err as Error).message } };
  }
}

/** quick_check on a read-only handle: no migration, nothing written. */
function sqliteFacts(dataDir: string): DatabaseFacts {
  const path = join(dataDir, DATABASE_FILE);
  if (!existsSync(path)) return { path, engine: "sqlite", state: null };
  try {
    return withReadOnlyDatabase(path, (sqlite) => ({
      path,
      engine: "sqlite",
      state: { quickCheck: (sqlite.query("PRAGMA quick_check").all() as { quick_check: string }[]).map((r) => r.quick_check), schema: schemaStatus(appliedMigrations(sqlite)) },
    }));
  } catch (err) {
    return { path, engine: "sqlite", state: { failed: (err as Error).message } };
  }
}

/** The certificate STARTTLS serves: tls.cert, the ACME one (acme.enabled), else the self-signed one in the data dir. */
export function servedCertificateFacts(config: Config): CertificateFacts {
  const source = config.tls.cert ? "configured" : config.acme.enabled ? "acme" : "self-signed";
  const path = config.tls.cert ?? join(config.dataDir, source === "acme" ? ACME_CERT_FILE : SELF_SIGNED_CERT);
  const base = { path, source, hostname: config.hostname, now: Date.now() } as const;
  if (source !== "configured" && !existsSync(path)) return { ...base, cert: null };
  try {
    const cert = new X509Certificate(readFileSync(path));
    return {
      ...base,
      cert: { validFrom: cert.validFromDate.getTime(), validTo: cert.validToDate.getTime(), coversHostname: cert.checkHost(config.hostname) !== undefined, names: cert.subjectAltName ?? cert.subject },
    };
  } catch (err) {
    return { ...base, cert: { failed: (err as NodeJS.ErrnoException).code ?? (err as Error).message } };
  }
}

/** Free bytes for unprivileged writes on the data dir's file system (its nearest existing parent if it is missing). */
export function freeBytes(path: string): number {
  let dir = path;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const fs = statfsSync(dir);
  return fs.bavail * fs.bsize;
}
