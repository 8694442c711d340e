// Abuse protection at each SMTP stage (docs/operations.md): denylist,
// concurrency and rate limits, greylisting, and the automatic denylist fed by
// detected spam. Decisions are pure functions; the guard keeps their state and
// reads the session, never writes it.
import type { Logger } from "../log.ts";
import { type Decision, decision } from "../mail/decision.ts";
import { reply } from "../mail/reply.ts";
import type { Session } from "../smtp/session.ts";
import { addDeny, bumpCounter, countersSince, greylistEntry, greylistSender, saveCounters, saveGreylist, saveGreylistSender } from "../store/senders.ts";
import { entryMatches, type SenderEntry, type SenderIdentity } from "../store/allowlist.ts";
import type { DB } from "../store/db.ts";
import { isPostgres } from "../store/dialect.ts";
import type { GreylistSenderTable, GreylistTable } from "../store/schema.ts";
import { createSenderLists } from "../store/sender-lists.ts";
import { closeNodeSession, liveSessions, openNodeSession } from "../store/nodes.ts";
import { hasAllowedSuffix, rootDomain } from "./identity.ts";
import { type KnownSender, knownSender } from "./providers.ts";

const HOUR = 3_600_000;
const DAY = 86_400_000;

export const LIMITS = {
  greylistMemoryMs: 30 * DAY,
  abuseWindowMs: DAY,
  autoDeny: { threshold: 5, allowlistedThreshold: 10, durationMs: 30 * DAY, allowlistedDurationMs: 7 * DAY },
} as const;

/** 450 until the same sender retries after `delayMs`; a sender that passed is remembered for 30 days. */
export function greylistDecision(entry: GreylistTable | undefined, key: string, now: number, delayMs: number): { deferral: Decision | null; next: GreylistTable } {
  if (entry?.passed_at && now - entry.last_seen <= LIMITS.greylistMemoryMs) return { deferral: null, next: { ...entry, last_seen: now } };
  if (entry && !entry.passed_at && now - entry.first_seen >= delayMs) return { deferral: null, next: { ...entry, passed_at: now, last_seen: now } };
  const first = entry && !entry.passed_at ? entry.first_seen : now;
  const wait = Math.max(1, Math.ceil((first + delayMs - now) / 1000));
  return {
    deferral: decision(reply(450, "4.7.1", `Greylisted: this is the first message from ${key.split("|")[0]} to this domain; please try again in ${wait} seconds`), "greylisted"),
    next: { key, first_seen: first, passed_at: null, last_seen: now },
  };
}

/**
 * Why a sender skipped greylisting, for the mail log: an allowlist entry (or
 * a default suffix), a known provider or brand TLD, or the auto-allowlist.
 */
export type GreylistSkip = { skipped: "allowlist" } | KnownSender | { skipped: "auto_allowlist"; match: string };

/** Skips that need no stored state: the allowlist, then the verified host's provider domain or brand TLD. */
export function greylistSkip(client: { allowlisted: boolean; verifiedHost: string | null }): GreylistSkip | null {
  return client.allowlisted ? { skipped: "allowlist" } : knownSender(client.verifiedHost);
}

/**
 * The auto-allowlist (like postgrey's AWL): a sender key that passed
 * greylisting once is spared for every recipient domain while it keeps being
 * seen within the memory window. `save` refreshes last_seen at most hourly,
 * so a busy sender costs one write an hour, not one per message.
 */
export function autoAllowlistDecision(entry: GreylistSenderTable | undefined, now: number): { spared: boolean; save: GreylistSenderTable | null } {
  if (!entry || now - entry.last_seen > LIMITS.greylistMemoryMs) return { spared: false, save: null };
  return { spared: true, save: now - entry.last_seen >= HOUR ? { ...entry, last_seen: now } : null };
}

/** Forgets hourly counts whose hour is over: a new window starts at 1 anyway, so the map holds only the last hour's senders. */
export function dropExpiredWindows(windows: Map<string, { window_start: number }>, now: number): void {
  for (const [key, window] of windows) if (now - window.window_start >= HOUR) windows.delete(key);
}

/** A denied sender gets 421, not 5xx: a false positive recovers as soon as the entry is removed. */
export function denyDecision(entry: SenderEntry & { reason: string }): Decision {
  const why = entry.reason ? ` (${entry.reason})` : "";
  return decision(reply(421, "4.7.1", `${entry.value} is on the denylist of this server${why}; contact its postmaster if this is a mistake`), "denylisted");
}

/** Who is connecting, as the listener identified it; `mailFrom` once MAIL names a sender ("" before). */
export type Client = Pick<Session, "remoteIp" | "verifiedHost"> & { mailFrom: string };

/** The lists' verdict on a client at one stage. */
export interface Screening {
  /** Exempt from greylisting, rate limits and SPF/DMARC refusal: an admin allowlist entry or a default suffix. */
  allowlisted: boolean;
  /** A denylist entry for the client (at connect: IP, name; at MAIL: also the sender address and domain). */
  denied: Decision | null;
}

export interface AbuseGuard {
  /** Both lists against the client, from one read of their version (one query per stage, not one per list). */
  screen(client: Client, stage: "connect" | "mail"): Promise<Screening>;
  /** Counts the connection toward its sender's concurrent connections (once per session); refuses one too many. */
  admit(session: Readonly<Session>): Promise<Decision | null>;
  /** Releases what admit counted, once: later calls, and calls before admit, do nothing. */
  onClose(session: Readonly<Session>): void;
  /** For an accepted recipient: rate limit, then greylist. `greylist` says why a sender skipped greylisting. */
  onRecipient(session: Readonly<Session>, recipient: string, recipientDomain: string): Promise<{ refusal: Decision | null; greylist?: GreylistSkip }>;
  /** Spam or GTUBE from this sender: counts toward an automatic denylist entry. */
  recordAbuse(session: Readonly<Session>, what: string): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What the guard decided, for the metrics: a greylist verdict, or a denylist entry that matched at connect or MAIL FROM. */
export type GuardEvent = { greylist: "deferred" | "passed" } | { denied: "connect" | "mail" };

export interface AbuseOptions {
  db: DB;
  logger: Logger;
  /** Read on each use (the settings page can change it); 0 turns greylisting off. */
  greylistDelayMs: () => number;
  observe: (event: GuardEvent) => void;
  /** Per-sender limits, read on each use like the delay. */
  limits: () => { connectionsPerHour: number; concurrentConnections: number };
  /** This node's hostname: on PostgreSQL its open sessions are counted under it (store/nodes.ts). */
  node: string;
  now?: () => number;
}

export function createAbuseGuard({ db, logger, greylistDelayMs, limits, observe, node, now = Date.now }: AbuseOptions): AbuseGuard {
  const concurrent = new Map<string, number>();
  // Hourly per-(sender, recipient) counts: in memory on the hot path, flushed to SQLite.
  const rates = new Map<string, { window_start: number; count: number }>();
  const dirty = new Set<string>();
  // Per session id: the key it was counted under, the rate keys it counted, and (PostgreSQL) whether
  // its row count went up; present from admission until it closes.
  const counted = new Map<string, { senderKey: string; rateKeys: Set<string>; opened: Promise<boolean> }>();
  let flushTimer: ReturnType<typeof setInterval> | undefined;
  // Session counts being released in the database (PostgreSQL): stop waits for them, the database closes after.
  const releasing = new Set<Promise<void>>();

  const senderLists = createSenderLists(db);
  const shared = isPostgres(db);
  const identity = (client: Client): SenderIdentity => ({ ip: client.remoteIp, host: client.verifiedHost, mailFrom: client.mailFrom });

  /** Greylisting when it is on: a skip (and why), else the per-domain decision; a pass puts the sender key on the auto-allowlist. */
  async function greylistStage(session: Readonly<Session>, recipientDomain: string): Promise<{ refusal: Decision | null; greylist?: GreylistSkip }> {
    const delay = greylistDelayMs();
    if (delay <= 0) return { refusal: null };
    const t = now();
    let skip = greylistSkip(session);
    if (!skip) {
      const auto = autoAllowlistDecision(await greylistSender(db, session.senderKey), t);
      if (auto.save) await saveGreylistSender(db, auto.save);
      if (auto.spared) skip = { skipped: "auto_allowlist", match: session.senderKey };
    }
    if (skip) {
      observe({ greylist: "passed" });
      return { refusal: null, greylist: skip };
    }
    const key = `${session.senderKey}|${rootDomain(recipientDomain)}`;
    const outcome = greylistDecision(await greylistEntry(db, key), key, t, delay);
    await saveGreylist(db, outcome.next);
    if (!outcome.deferral) await saveGreylistSender(db, { sender_key: session.senderKey, passed_at: t, last_seen: t });
    observe({ greylist: outcome.deferral ? "deferred" : "passed" });
    return { refusal: outcome.deferral };
  }

  /**
   * One more connection of the hour under `rateKey`. Several nodes on one
   * PostgreSQL count in it directly, so a sender's connections add up across
   * them; one server counts in memory and flushes every 10 s (the hot path
   * stays free of writes).
   */
  async function countRate(rateKey: string, t: number): Promise<number> {
    if (shared) return bumpCounter(db, "rate_counts", rateKey, HOUR, t);
    const current = rates.get(rateKey);
    const next = current && t - current.window_start < HOUR ? { window_start: current.window_start, count: current.count + 1 } : { window_start: t, count: 1 };
    rates.set(rateKey, next);
    dirty.add(rateKey);
    return next.count;
  }

  /**
   * One server counts its sessions in memory (no write on the hot path);
   * several nodes on PostgreSQL count them in node_sessions, so a sender's
   * sessions on every live node add up (docs/operations.md, "PostgreSQL").
   */
  function openHere(senderKey: string): number {
    const open = (concurrent.get(senderKey) ?? 0) + 1;
    concurrent.set(senderKey, open);
    return open;
  }

  function closeHere(senderKey: string): void {
    const open = (concurrent.get(senderKey) ?? 1) - 1;
    if (open > 0) concurrent.set(senderKey, open);
    else concurrent.delete(senderKey);
  }

  async function flush() {
    const rows = [...dirty].map((key) => ({ key, ...rates.get(key)! }));
    dirty.clear();
    await saveCounters(db, "rate_counts", rows);
    dropExpiredWindows(rates, now());
  }

  return {
    async screen(client, stage) {
      const lists = await senderLists(now());
      const who = identity(client);
      const entry = lists.deny.find((e) => entryMatches(e, who));
      if (entry) observe({ denied: stage });
      return {
        allowlisted: hasAllowedSuffix(client.verifiedHost) || lists.allow.some((e) => entryMatches(e, who)),
        denied: entry ? denyDecision(entry) : null,
      };
    },

    async admit(session) {
      if (counted.has(session.id)) return null;
      const written = shared ? openNodeSession(db, node, session.senderKey) : Promise.resolve();
      // Recorded before the count is written, so a close meanwhile releases it once written.
      counted.set(session.id, { senderKey: session.senderKey, rateKeys: new Set(), opened: written.then(() => true, () => false) });
      const open = shared ? await written.then(() => liveSessions(db, session.senderKey, now())) : openHere(session.senderKey);
      const { concurrentConnections } = limits();
      if (open > concurrentConnections && !session.allowlisted) {
        return decision(reply(421, "4.7.0", `Too many concurrent connections from ${session.senderKey} (at most ${concurrentConnections}); try again later`), "too_many_connections");
      }
      return null;
    },

    onClose(session) {
      const admitted = counted.get(session.id);
      if (!admitted) return; // not counted (yet): the listener closes it again once its connect stage ends
      counted.delete(session.id);
      if (!shared) return closeHere(admitted.senderKey);
      const release = admitted.opened
        .then((wasCounted) => (wasCounted ? closeNodeSession(db, node, admitted.senderKey) : undefined))
        .catch((err) => logger.error("abuse.session_release_failed", { key: admitted.senderKey, error: err }))
        .finally(() => releasing.delete(release));
      releasing.add(release);
    },

    async onRecipient(session, recipient, recipientDomain) {
      if (session.allowlisted) return greylistStage(session, recipientDomain);
      const seen = counted.get(session.id)?.rateKeys;
      const rateKey = `${session.senderKey}|${recipient.toLowerCase()}`;
      if (seen && !seen.has(rateKey)) {
        seen.add(rateKey);
        const count = await countRate(rateKey, now());
        const { connectionsPerHour } = limits();
        if (count > connectionsPerHour) {
          return { refusal: decision(reply(421, "4.7.0", `Rate limit: more than ${connectionsPerHour} connections in an hour from ${session.senderKey} to ${recipient}; try again later`), "rate_limited") };
        }
      }
      return greylistStage(session, recipientDomain);
    },

    async recordAbuse(session, what) {
      const count = await bumpCounter(db, "abuse_counts", session.senderKey, LIMITS.abuseWindowMs, now());
      const { threshold, allowlistedThreshold, durationMs, allowlistedDurationMs } = LIMITS.autoDeny;
      const limit = session.allowlisted ? allowlistedThreshold : threshold;
      if (count < limit) return;
      const key = session.senderKey;
      // The key is an IP, an IPv6 /64 or a domain: each is a denylist entry form.
      await addDeny(db, key, { reason: `${count} detections (${what}) in 24 hours`, source: "auto", expiresAt: now() + (session.allowlisted ? allowlistedDurationMs : durationMs) });
      logger.warn("abuse.auto_deny", { key, count, what });
    },

    async start() {
      for (const row of await countersSince(db, "rate_counts", now() - HOUR)) rates.set(row.key, { window_start: row.window_start, count: row.count });
      flushTimer = setInterval(() => void flush().catch((err) => logger.error("abuse.flush_failed", { error: err })), 10_000);
      flushTimer.unref();
    },

    async stop() {
      clearInterval(flushTimer);
      await Promise.all(releasing);
      await flush();
    },
  };
}
