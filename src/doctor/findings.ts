// `mailferry doctor` decisions: each function turns facts gathered about the
// machine (facts.ts) into findings, ✓ ok, ! warning or ✗ error, with the fix.
// No I/O here, so every verdict is unit-tested from plain values.
import type { SchemaStatus } from "../store/versions.ts";
import { newerSchemaMessage } from "../store/versions.ts";

export type Severity = "ok" | "warning" | "error";

export interface Finding {
  check: string;
  severity: Severity;
  message: string;
  /** What to do about a warning or an error. */
  fix?: string;
}

const ok = (check: string, message: string): Finding => ({ check, severity: "ok", message });
const warning = (check: string, message: string, fix: string): Finding => ({ check, severity: "warning", message, fix });
const error = (check: string, message: string, fix: string): Finding => ({ check, severity: "error", message, fix });

const MIB = 1024 * 1024;
const DAY_MS = 86_400_000;
/** Below this much free space in the data dir, writes (mail log, database) will soon fail. */
export const DISK_ERROR_BYTES = 100 * MIB;
export const DISK_WARNING_BYTES = 1024 * MIB;
/** A certificate expiring sooner than this is a warning: renewal should have happened already. */
export const CERT_WARNING_DAYS = 14;

export const MARKS: Record<Severity, string> = { ok: "✓", warning: "!", error: "✗" };

// --- listening ports -------------------------------------------------------

export type BindOutcome = "free" | "in_use" | "denied" | "unavailable" | { failed: string };

export interface PortFacts {
  /** "SMTP" or "HTTP". */
  name: string;
  /** The setting that moves it, e.g. `smtp.port`. */
  setting: string;
  host: string;
  port: number;
  bind: BindOutcome;
}

/** What the admin port's /healthz answered, when a mailferry answers it. */
export interface RunningMailferry {
  version: string;
  status: string;
  smtpPort: number | null;
}

export function portFinding(facts: PortFacts, running: RunningMailferry | null): Finding {
  const check = `${facts.name} port`;
  const where = `${facts.host}:${facts.port}`;
  if (facts.port === 0) return ok(check, `${facts.setting} is 0: a free port is picked at start`);
  const bind = facts.bind;
  if (bind === "free") return ok(check, `${where} can be bound`);
  // The kernel refuses a privileged port to this user before it looks whether the
  // port is taken, so "denied" also comes from the CLI run as the service user
  // (docs/install.md) beside the running server, which holds the port by its unit's capability.
  const ours = running && (facts.name === "HTTP" || running.smtpPort === facts.port);
  if ((bind === "in_use" || bind === "denied") && ours) return ok(check, `${where} is answered by the running mailferry ${running.version} (status ${running.status})`);
  if (bind === "in_use") return error(check, `${where} is in use by another program`, `stop it (ss -ltnp 'sport = :${facts.port}' shows which), or set ${facts.setting}`);
  if (bind === "denied") {
    return error(check, `${where} may not be bound by this user (ports below 1024 need privileges)`, "run mailferry as root or with CAP_NET_BIND_SERVICE (the systemd unit grants it)");
  }
  if (bind === "unavailable") return error(check, `${facts.host} is not an address of this machine`, `set ${facts.setting.replace(/port$/, "host")} to one of its addresses or 0.0.0.0`);
  return error(check, `${where} cannot be bound: ${bind.failed}`, `check ${facts.setting}`);
}

// --- outbound port 25 ------------------------------------------------------

export interface OutboundFacts {
  /** What was tried: the smarthost, or the MX host of a well-known domain. */
  target: string;
  /** host:port connected to, or null when there was nothing to connect to. */
  address: string | null;
  outcome: "answered" | "connected" | "refused" | "timeout" | { failed: string };
  /** The first reply line of the server, when it sent one. */
  greeting?: string;
}

export function outboundFinding(facts: OutboundFacts, smarthost: boolean): Finding {
  const check = "outbound SMTP";
  const { outcome, address } = facts;
  if (outcome === "answered" || outcome === "connected") {
    return ok(check, `${address} (${facts.target}) ${outcome === "answered" ? `answered: ${facts.greeting}` : "accepted the connection"}`);
  }
  const fix = smarthost ? "check [smarthost] host and port, and that this machine may reach it" : "many VPS providers block outbound port 25: ask yours to open it, or relay through a smarthost ([smarthost] host)";
  if (!address) return warning(check, `could not check: ${facts.target}: ${typeof outcome === "string" ? outcome : outcome.failed}`, "check DNS (below), then run doctor again");
  const why = outcome === "refused" ? "refused the connection" : outcome === "timeout" ? "did not answer in time" : outcome.failed;
  return warning(check, `${address} (${facts.target}) ${why}`, fix);
}

// --- DNS -------------------------------------------------------------------

export interface DnsFacts {
  server: string;
  hostname: string;
  /** The A records, a negative answer (the name or record does not exist), or a failure code. */
  answer: { addresses: string[] } | { negative: string } | { failed: string };
}

export function dnsFinding({ server, hostname, answer }: DnsFacts): Finding {
  const check = "DNS";
  if ("failed" in answer) return error(check, `${server} did not answer the query for ${hostname} A (${answer.failed})`, "check dns.servers (MAILFERRY_DNS_SERVERS) and that the resolver runs");
  if ("negative" in answer) return warning(check, `${server} answers, but ${hostname} has no A record (${answer.negative})`, `publish an A record for ${hostname}: the MX records of your domains point at it`);
  return ok(check, `${server} answers: ${hostname} A ${answer.addresses.join(", ")}`);
}

// --- clock -----------------------------------------------------------------

export interface ClockFacts {
  now: number;
  /** When the running program was built or installed (its file's time), or null when unknown. */
  builtAt: number | null;
  ntp: "synchronized" | "unsynchronized" | "unknown";
}

export function clockFinding({ now, builtAt, ntp }: ClockFacts): Finding {
  const check = "clock";
  const fix = "turn on time synchronization: timedatectl set-ntp true (or run chrony)";
  if (builtAt !== null && now < builtAt) {
    return error(check, `the system time ${new Date(now).toISOString()} is before this program was built (${new Date(builtAt).toISOString()})`, fix);
  }
  if (ntp === "unsynchronized") return warning(check, "the system clock is not synchronized (TLS, DKIM signatures and greylisting depend on it)", fix);
  if (ntp === "unknown") return warning(check, `${new Date(now).toISOString()}; could not tell whether the clock is synchronized (no timedatectl)`, "make sure an NTP client (systemd-timesyncd, chrony) runs");
  return ok(check, `${new Date(now).toISOString()}, synchronized`);
}

// --- data dir --------------------------------------------------------------

export interface DataDirFacts {
  path: string;
  /** null when the directory does not exist (or is not a directory). */
  stat: { uid: number; mode: number } | null;
  /** null when a test file could be made in it, else why not. */
  writeError: string | null;
  /** The user doctor runs as. */
  uid: number;
}

export function dataDirFindings({ path, stat, writeError, uid }: DataDirFacts): Finding[] {
  const check = "data dir";
  if (!stat) return [error(check, `${path} does not exist or is not a directory`, `check --data-dir / MAILFERRY_DATA_DIR, or create it: install -d -m 700 ${path}`)];
  const mode = (stat.mode & 0o777).toString(8).padStart(4, "0");
  const findings: Finding[] = [];
  if (writeError) findings.push(error(check, `${path} is not writable: ${writeError}`, `give the mailferry user write access: chown -R <user> ${path}`));
  if (stat.uid !== uid) {
    const message = `${path} belongs to uid ${stat.uid}, but this runs as uid ${uid}`;
    // root can use it anyway; what matters is the user the service runs as.
    if (uid === 0) findings.push(warning(check, message, "run doctor as the user mailferry runs as (sudo -u mailferry mailferry doctor)"));
    else findings.push(error(check, message, `chown -R ${uid} ${path}, or run mailferry as its owner`));
  }
  if (stat.mode & 0o004) findings.push(error(check, `${path} is readable by every user (mode ${mode}): it holds the keys and the database`, `chmod o-rwx ${path}`));
  return findings.length ? findings : [ok(check, `${path}: writable, owned by uid ${stat.uid}, mode ${mode}`)];
}

// --- database --------------------------------------------------------------

export interface DatabaseFacts {
  /** The SQLite file, or the PostgreSQL URL without its password. */
  path: string;
  engine: "sqlite" | "postgresql";
  /**
   * The schema and SQLite's quick_check rows (null on PostgreSQL, which checks
   * its own pages); null when there is no database yet; or why it could not be read.
   */
  state: { quickCheck: string[] | null; schema: SchemaStatus } | null | { failed: string };
}

const PRE_MIGRATION_COPY: Record<DatabaseFacts["engine"], string> = { sqlite: "a copy is kept first", postgresql: "a pg_dump is taken first when pg_dump is on PATH" };

export function databaseFinding({ path, engine, state }: DatabaseFacts): Finding {
  const check = "database";
  const restore = "restore a backup (mailferry restore <dir>) or a copy from <data-dir>/backups/";
  if (state === null) return warning(check, `${path} does not exist yet`, "it is made when mailferry starts; check the data dir if it should exist");
  if ("failed" in state && engine === "postgresql") {
    return error(check, state.failed, "check [database] url (MAILFERRY_DATABASE_URL): that PostgreSQL runs there, lets this host in (pg_hba.conf) and knows the user, password and database");
  }
  if ("failed" in state) return error(check, `${path} cannot be read: ${state.failed}`, restore);
  if (state.quickCheck && state.quickCheck.join() !== "ok") return error(check, `${path} fails quick_check: ${state.quickCheck.slice(0, 3).join("; ")}`, restore);
  const newer = newerSchemaMessage(state.schema);
  if (newer) return error(check, newer, "install the newer mailferry again, or restore a backup made by this version");
  const pending = state.schema.pending.length && state.schema.applied.length ? `; ${state.schema.pending.length} migration(s) to apply at the next start (${PRE_MIGRATION_COPY[engine]})` : "";
  return ok(check, `${path}: ${state.quickCheck ? "quick_check ok" : "connected"}, schema ${state.schema.version ?? "(empty)"}${pending}`);
}

// --- certificate -----------------------------------------------------------

export interface CertificateFacts {
  path: string;
  /** tls.cert, the ACME CA's (acme.enabled), or the self-signed one. */
  source: "configured" | "acme" | "self-signed";
  hostname: string;
  now: number;
  /** The certificate, null when the self-signed one is not made yet, or why it could not be read. */
  cert: { validFrom: number; validTo: number; coversHostname: boolean; names: string } | null | { failed: string };
}

const RENEW: Record<CertificateFacts["source"], (path: string) => string> = {
  configured: () => "renew it (e.g. certbot renew) and restart mailferry, or set tls.cert and tls.key to a valid one",
  acme: () => "mailferry renews it by itself: look for acme.* errors in its log, and make sure port 80 of this host is reachable from the internet",
  "self-signed": (path) => `delete ${path} and its key, then restart mailferry to make a new one`,
};

export function certificateFinding({ path, source, hostname, now, cert }: CertificateFacts): Finding {
  const check = "certificate";
  const renew = RENEW[source](path);
  if (cert === null) {
    if (source === "acme") return warning(check, `no ACME certificate issued yet (${path}); the self-signed one serves meanwhile`, renew);
    return warning(check, `no certificate yet at ${path}`, "a self-signed one is made when mailferry starts; set tls.cert and tls.key (or acme.enabled) for a CA-signed one");
  }
  if ("failed" in cert) return error(check, `${path} cannot be read: ${cert.failed}`, source === "configured" ? "check tls.cert" : renew);
  const until = new Date(cert.validTo).toISOString().slice(0, 10);
  if (cert.validTo <= now) return error(check, `${path} expired on ${until}`, renew);
  if (cert.validFrom > now) return error(check, `${path} is not valid before ${new Date(cert.validFrom).toISOString()}`, "check the system clock, or the certificate's dates");
  if (!cert.coversHostname) {
    const message = `${path} does not name ${hostname} (it names ${cert.names || "nothing"})`;
    return source === "configured" ? error(check, message, `get a certificate for ${hostname}, or set hostname to a name it covers`) : warning(check, message, renew);
  }
  const days = Math.floor((cert.validTo - now) / DAY_MS);
  const kind = source === "configured" ? "" : ` (${source})`;
  if (days < CERT_WARNING_DAYS) return warning(check, `${path}${kind} expires in ${days} days (${until})`, renew);
  return ok(check, `${path}${kind}: valid until ${until} (${days} days), names ${hostname}`);
}

// --- disk space ------------------------------------------------------------

export function diskFinding(path: string, freeBytes: number): Finding {
  const check = "disk space";
  const free = `${Math.floor(freeBytes / MIB)} MiB free`;
  const fix = `free space on the file system of ${path} (old logs, packages), or move the data dir to a larger disk`;
  if (freeBytes < DISK_ERROR_BYTES) return error(check, `${free} for ${path}`, fix);
  if (freeBytes < DISK_WARNING_BYTES) return warning(check, `only ${free} for ${path}`, fix);
  return ok(check, `${free} for ${path}`);
}

/** Exit code of doctor: 1 when any finding is an error (warnings pass). */
export function doctorExitCode(findings: Finding[]): number {
  return findings.some((f) => f.severity === "error") ? 1 : 0;
}
