// Certificates from an ACME CA (Let's Encrypt) by HTTP-01: one certificate for
// the hostname and mta-sts.<domain> of every managed domain. A stored valid
// certificate is used at once; otherwise the self-signed one serves until the
// CA's is issued. A check every acme.check_interval orders a new one when the
// names changed or it expires within acme.renew_before; failures are retried
// with growing delays and never stop the server. Decisions are in ./renewal.ts,
// the protocol in ./acme-order.ts (loaded on the first order).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Config, readSettingFile } from "../config/index.ts";
import { formatDuration } from "../config/values.ts";
import { DnsError, type Resolver } from "../dns/resolver.ts";
import type { Logger } from "../log.ts";
import type { DB } from "../store/db.ts";
import { listDomains } from "../store/domains.ts";
import { type ParsedCertificate, type CertificateSource, parseCertificate, keyMatches, type TlsCredentials } from "./credentials.ts";
import { certificateNames, decide, type Failure, retryDelay, sameNames, type StoredCertificate } from "./renewal.ts";

export const ACME_DIR = "acme";
export const ACCOUNT_KEY_FILE = `${ACME_DIR}/account.key`;
export const CERT_FILE = `${ACME_DIR}/cert.pem`;
export const KEY_FILE = `${ACME_DIR}/cert.key`;
/** Which directory issued the stored certificate. */
export const META_FILE = `${ACME_DIR}/cert.json`;

export interface AcmeManager extends CertificateSource {
  /** The key authorization for a pending HTTP-01 token, for the challenge listener. */
  challengeResponse(token: string): string | undefined;
  /** Checks now (in the background) and then every acme.check_interval. */
  start(): void;
  /** One check: orders a certificate when one is due; resolves when done (never rejects). */
  check(): Promise<void>;
  /** How many orders in a row failed (0 after a success): the alert job reads it. */
  failures(): number;
  stop(): void;
}

export interface AcmeDeps {
  config: Config;
  db: DB;
  resolver: Resolver;
  logger: Logger;
  /** Served until a CA certificate is there (the self-signed one). */
  fallback: TlsCredentials;
}

interface Stored {
  credentials: TlsCredentials;
  facts: ParsedCertificate;
  directoryUrl: string;
}

export function createAcmeManager({ config, db, resolver, logger, fallback }: AcmeDeps): AcmeManager {
  const { directoryUrl, renewBefore, checkInterval } = config.acme;
  const challenges = new Map<string, string>();
  const listeners: ((credentials: TlsCredentials) => void)[] = [];
  const ca = config.acme.caFile ? readSettingFile(config.acme.caFile, { section: "acme", key: "ca_file" }).toString("utf8") : null;
  let stored = loadStored(config.dataDir, logger);
  let failure: Failure | null = null;
  let running: Promise<void> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let lastLeftOut = "";

  /** The MTA-STS host of a domain counts once it resolves: an order with a name not yet in DNS would fail whole. */
  async function published(name: string): Promise<boolean> {
    for (const type of ["A", "AAAA"] as const) {
      try {
        if ((await resolver.resolve(name, type)).length) return true;
      } catch (err) {
        // Only a definite "no such record" leaves it out; on a lookup failure the order tries it.
        if (!(err instanceof DnsError && err.isNegative)) return true;
      }
    }
    return false;
  }

  async function wantedNames(): Promise<string[]> {
    const domains = (await listDomains(db)).map((d) => d.name);
    const ready = await Promise.all(domains.map((d) => published(`mta-sts.${d}`)));
    const { names, leftOut } = certificateNames(config.hostname, domains.filter((_, i) => ready[i]));
    const notInDns = domains.filter((_, i) => !ready[i]).map((d) => `mta-sts.${d}`);
    const summary = JSON.stringify([notInDns, leftOut]);
    if (summary !== lastLeftOut && (notInDns.length || leftOut.length)) {
      logger.warn("acme.names_left_out", { not_in_dns: notInDns.length ? notInDns : undefined, over_limit: leftOut.length ? leftOut : undefined });
    }
    lastLeftOut = summary;
    return names;
  }

  async function order(names: string[]): Promise<Stored> {
    const protocol = await import("./acme-order.ts");
    const accountKey = await loadAccountKey(config.dataDir, protocol.createAccountKey);
    const { key, cert } = await protocol.orderCertificate({ directoryUrl, accountKey, email: config.acme.email, names, ca, challenges });
    return saveStored(config.dataDir, key, cert, directoryUrl);
  }

  async function checkOnce(): Promise<void> {
    const names = await wantedNames();
    const current: StoredCertificate | null = stored && { names: stored.facts.names, notAfter: stored.facts.notAfter, directoryUrl: stored.directoryUrl };
    const decision = decide({ stored: current, names, directoryUrl, now: Date.now(), renewBefore, failure });
    if (decision.action === "keep") return logger.debug("acme.valid", { serial: stored?.facts.serial, not_after: stored ? new Date(stored.facts.notAfter).toISOString() : undefined });
    if (decision.action === "wait") return logger.debug("acme.retry_pending", { reason: decision.reason, retry_at: new Date(decision.retryAt).toISOString() });
    if (stored) logger.info("acme.renew_due", { reason: decision.reason, serial: stored.facts.serial, not_after: new Date(stored.facts.notAfter).toISOString(), names });
    logger.info("acme.order", { reason: decision.reason, names, directory: directoryUrl });
    try {
      const issued = await order(names);
      stored = issued;
      failure = null;
      if (stopped) return;
      logger.info("acme.issued", { names: issued.facts.names, serial: issued.facts.serial, issuer: issued.facts.issuer, not_after: new Date(issued.facts.notAfter).toISOString() });
      for (const listener of listeners) listener(issued.credentials);
    } catch (err) {
      const count = failure && sameNames(failure.names, names) ? failure.count + 1 : 1;
      const delay = retryDelay(count, checkInterval);
      failure = { names, count, retryAt: Date.now() + delay };
      if (stopped) return;
      logger.error("acme.failed", { reason: decision.reason, names, directory: directoryUrl, error: describeError(err), attempt: count, retry_in: formatDuration(delay) });
    }
  }

  function check(): Promise<void> {
    running ??= checkOnce()
      .catch((err) => {
        if (!stopped) logger.error("acme.failed", { error: describeError(err), retry_in: formatDuration(checkInterval) });
      })
      .finally(() => {
        running = null;
      });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    // Poll every check_interval, but wake exactly when a retry falls due sooner.
    const untilRetry = failure ? Math.max(0, failure.retryAt - Date.now()) : checkInterval;
    timer = setTimeout(() => void check().then(schedule), Math.min(checkInterval, untilRetry));
    timer.unref?.();
  }

  return {
    current: () => stored?.credentials ?? fallback,
    onChange: (listener) => void listeners.push(listener),
    challengeResponse: (token) => challenges.get(token),
    start() {
      if (stored) logger.info("acme.stored", { serial: stored.facts.serial, names: stored.facts.names, not_after: new Date(stored.facts.notAfter).toISOString() });
      void check().then(schedule);
    },
    check,
    failures: () => failure?.count ?? 0,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** The stored certificate if it is complete, consistent and not expired. */
function loadStored(dataDir: string, logger: Logger): Stored | null {
  const [certPath, keyPath, metaPath] = [CERT_FILE, KEY_FILE, META_FILE].map((f) => join(dataDir, f)) as [string, string, string];
  if (![certPath, keyPath, metaPath].every((p) => existsSync(p))) return null;
  try {
    const cert = readFileSync(certPath);
    const key = readFileSync(keyPath);
    const facts = parseCertificate(cert);
    const { directory_url: directoryUrl } = JSON.parse(readFileSync(metaPath, "utf8")) as { directory_url: string };
    if (!keyMatches(cert, key)) throw new Error(`${KEY_FILE} is not the key of ${CERT_FILE}`);
    if (facts.notAfter <= Date.now()) {
      logger.warn("acme.stored_expired", { serial: facts.serial, not_after: new Date(facts.notAfter).toISOString() });
      return null;
    }
    return { credentials: { cert, key, certPath, selfSigned: false }, facts, directoryUrl };
  } catch (err) {
    logger.warn("acme.stored_unusable", { error: describeError(err), note: "a new certificate is ordered" });
    return null;
  }
}

/** Key first, certificate, then which CA: each file replaced whole, and loadStored checks they belong together. */
function saveStored(dataDir: string, key: Buffer, cert: Buffer, directoryUrl: string): Stored {
  mkdirSync(join(dataDir, ACME_DIR), { recursive: true, mode: 0o700 });
  writeReplacing(join(dataDir, KEY_FILE), key, 0o600);
  writeReplacing(join(dataDir, CERT_FILE), cert, 0o644);
  writeReplacing(join(dataDir, META_FILE), JSON.stringify({ directory_url: directoryUrl, issued_at: new Date().toISOString() }) + "\n", 0o644);
  return { credentials: { cert, key, certPath: join(dataDir, CERT_FILE), selfSigned: false }, facts: parseCertificate(cert), directoryUrl };
}

/** The ACME account key, made on first use (0600): the account at the CA is found again by it. */
async function loadAccountKey(dataDir: string, create: () => Promise<Buffer>): Promise<Buffer> {
  const path = join(dataDir, ACCOUNT_KEY_FILE);
  if (!existsSync(path)) {
    mkdirSync(join(dataDir, ACME_DIR), { recursive: true, mode: 0o700 });
    writeReplacing(path, await create(), 0o600);
  }
  return readFileSync(path);
}

function writeReplacing(path: string, data: Buffer | string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

/** ACME problem documents carry their detail; network errors their code. */
function describeError(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return [e.message ?? String(err), e.code && !e.message?.includes(e.code) ? `(${e.code})` : ""].filter(Boolean).join(" ");
}
