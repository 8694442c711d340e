// Certificates from an ACME CA (Let's Encrypt) by HTTP-01: one certificate for
// the hostname and mta-sts.<domain> of every managed domain. A stored valid
// certificate is used at once; otherwise the self-signed one serves until the
// CA's is issued. A check every acme.check_interval orders a new one when the
// names changed or it expires within acme.renew_before; failures are retried
// with growing delays and never stop the server. Decisions are in ./renewal.ts,
// the protocol in ./acme-order.ts (loaded on the first order). On PostgreSQL the
// account key, each hostname's certificate and the pending challenges are in the
// database too, for all nodes (src/store/acme.ts, docs/multi-node.md).
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Config, readSettingFile } from "../config/index.ts";
import { formatDuration } from "../config/values.ts";
import { DnsError, type Resolver } from "../dns/resolver.ts";
import type { Logger } from "../log.ts";
import { acmeStateShared, findAcmeCertificate, findChallenge, removeChallenge, saveAcmeCertificate, saveChallenge, type SharedCertificate } from "../store/acme.ts";
import { writeReplacing } from "../store/data-dir.ts";
import type { DB } from "../store/db.ts";
import { listDomains } from "../store/domains.ts";
import { loadSharedSecret } from "../store/secrets.ts";
import type { ChallengeStore } from "./acme-order.ts";
import { type ParsedCertificate, type CertificateSource, parseCertificate, keyMatches, type TlsCredentials } from "./credentials.ts";
import { certificateNames, decide, type Failure, retryDelay, sameNames, type StoredCertificate } from "./renewal.ts";

export const ACME_DIR = "acme";
export const ACCOUNT_KEY_FILE = `${ACME_DIR}/account.key`;
export const CERT_FILE = `${ACME_DIR}/cert.pem`;
export const KEY_FILE = `${ACME_DIR}/cert.key`;
/** Which directory issued the stored certificate. */
export const META_FILE = `${ACME_DIR}/cert.json`;

export interface AcmeManager extends CertificateSource {
  /** The key authorization for a pending HTTP-01 token (on PostgreSQL, of any node's order), for the challenge listener. */
  challengeResponse(token: string): Promise<string | undefined>;
  /** Takes the database's certificate for this hostname (PostgreSQL), then checks now (in the background) and every acme.check_interval. */
  start(): Promise<void>;
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
  const shared = acmeStateShared(db);
  const challenges = new Map<string, string>();
  // The node the CA reaches answers: on PostgreSQL that may be another node than the one ordering.
  const challengeStore: ChallengeStore = {
    async set(token, keyAuthorization) {
      challenges.set(token, keyAuthorization);
      if (shared) await saveChallenge(db, token, keyAuthorization, Date.now());
    },
    async delete(token) {
      challenges.delete(token);
      if (shared) await removeChallenge(db, token);
    },
  };
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
    const accountKey = await loadAccountKey(db, config.dataDir, protocol.createAccountKey);
    const { key, cert } = await protocol.orderCertificate({ directoryUrl, accountKey, email: config.acme.email, names, ca, challenges: challengeStore });
    const issued = saveStored(config.dataDir, key, cert, directoryUrl);
    if (shared) await saveAcmeCertificate(db, config.hostname, sharedForm(issued));
    return issued;
  }

  /**
   * PostgreSQL: a usable certificate the database holds for this hostname
   * replaces the stored one (a reinstalled node, or another node of this
   * hostname renewed it); a stored one the database lacks goes there.
   */
  async function syncShared(): Promise<void> {
    const row = await findAcmeCertificate(db, config.hostname);
    if (row && row.cert === stored?.credentials.cert.toString("utf8")) return;
    const taken = row && checkedShared(row, logger);
    if (!taken) {
      if (stored) await saveAcmeCertificate(db, config.hostname, sharedForm(stored));
      return;
    }
    stored = saveStored(config.dataDir, taken.credentials.key, taken.credentials.cert, taken.directoryUrl);
    logger.info("acme.shared_taken", { serial: stored.facts.serial, names: stored.facts.names, not_after: new Date(stored.facts.notAfter).toISOString() });
    for (const listener of listeners) listener(stored.credentials);
  }

  async function checkOnce(): Promise<void> {
    if (shared) await syncShared();
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
    challengeResponse: async (token) => challenges.get(token) ?? (shared ? ((await findChallenge(db, token)) ?? undefined) : undefined),
    async start() {
      if (stored) logger.info("acme.stored", { serial: stored.facts.serial, names: stored.facts.names, not_after: new Date(stored.facts.notAfter).toISOString() });
      // Before the node says it is ready, so it serves the database's certificate from then on; a failure leaves it to the first check.
      if (shared) await syncShared().catch((err) => logger.warn("acme.shared_unavailable", { error: describeError(err) }));
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
    const { directory_url: directoryUrl } = JSON.parse(readFileSync(metaPath, "utf8")) as { directory_url: string };
    return checked(readFileSync(certPath), readFileSync(keyPath), directoryUrl, certPath, logger, `${KEY_FILE} is not the key of ${CERT_FILE}`);
  } catch (err) {
    logger.warn("acme.stored_unusable", { error: describeError(err), note: "a new certificate is ordered" });
    return null;
  }
}

/** The database's certificate if usable (as loadStored checks the files). */
function checkedShared(row: SharedCertificate, logger: Logger): Stored | null {
  try {
    return checked(Buffer.from(row.cert), Buffer.from(row.key), row.directoryUrl, CERT_FILE, logger, "the key in the database is not its certificate's");
  } catch (err) {
    logger.warn("acme.shared_unusable", { error: describeError(err) });
    return null;
  }
}

/** A certificate whose key belongs to it, null when it has expired; throws `mismatch` or a parse error otherwise. */
function checked(cert: Buffer, key: Buffer, directoryUrl: string, certPath: string, logger: Logger, mismatch: string): Stored | null {
  const facts = parseCertificate(cert);
  if (!keyMatches(cert, key)) throw new Error(mismatch);
  if (facts.notAfter <= Date.now()) {
    logger.warn("acme.stored_expired", { serial: facts.serial, not_after: new Date(facts.notAfter).toISOString() });
    return null;
  }
  return { credentials: { cert, key, certPath, selfSigned: false }, facts, directoryUrl };
}

const sharedForm = (s: Stored): SharedCertificate => ({ cert: s.credentials.cert.toString("utf8"), key: s.credentials.key.toString("utf8"), directoryUrl: s.directoryUrl, issuedAt: Date.now() });

/** Key first, certificate, then which CA: each file replaced whole, and loadStored checks they belong together. */
function saveStored(dataDir: string, key: Buffer, cert: Buffer, directoryUrl: string): Stored {
  mkdirSync(join(dataDir, ACME_DIR), { recursive: true, mode: 0o700 });
  writeReplacing(join(dataDir, KEY_FILE), key, 0o600);
  writeReplacing(join(dataDir, CERT_FILE), cert, 0o644);
  writeReplacing(join(dataDir, META_FILE), JSON.stringify({ directory_url: directoryUrl, issued_at: new Date().toISOString() }) + "\n", 0o644);
  return { credentials: { cert, key, certPath: join(dataDir, CERT_FILE), selfSigned: false }, facts: parseCertificate(cert), directoryUrl };
}

/** The ACME account key, made on first use (0600): the account at the CA is found again by it. One for all nodes on PostgreSQL. */
async function loadAccountKey(db: DB, dataDir: string, create: () => Promise<Buffer>): Promise<Buffer> {
  mkdirSync(join(dataDir, ACME_DIR), { recursive: true, mode: 0o700 });
  if (acmeStateShared(db)) return Buffer.from(await loadSharedSecret(db, dataDir, ACCOUNT_KEY_FILE, async () => (await create()).toString("utf8")));
  const path = join(dataDir, ACCOUNT_KEY_FILE);
  if (!existsSync(path)) writeReplacing(path, await create(), 0o600);
  return readFileSync(path);
}

/** ACME problem documents carry their detail; network errors their code. */
function describeError(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return [e.message ?? String(err), e.code && !e.message?.includes(e.code) ? `(${e.code})` : ""].filter(Boolean).join(" ");
}
