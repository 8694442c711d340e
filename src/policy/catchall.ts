// The learning catch-all (docs/aliases.md, "Learning catch-all"): a name a
// catch-all alias accepts that gets only spam (rspamd's verdict, a DNSBL
// listing of the client, failed authentication) is suggested for refusal, or
// with `catchall.learn = apply` refused: 550 5.1.1 at RCPT, before any
// message is read. An admin's word (refuse, allow again) always stands.
// The decisions are pure; the learner gathers their facts and keeps the counts.
import type { CatchAllLearn } from "../config/index.ts";
import type { Resolver } from "../dns/resolver.ts";
import { DnsError, dnsblQueryName } from "../dns/resolver.ts";
import type { Logger } from "../log.ts";
import { type Decision, decision, type Facts, type Reason } from "../mail/decision.ts";
import { reply } from "../mail/reply.ts";
import type { Route } from "../routing/resolve.ts";
import type { Session } from "../smtp/session.ts";
import { advanceCatchAllState, type CatchAllKey, catchAllKeyOf, catchAllName, countVerdict } from "../store/catchall.ts";
import type { DB } from "../store/db.ts";
import type { CatchAllName, CatchAllState } from "../store/schema.ts";

/** The label routing gives a catch-all alias (src/aliases/rules.ts `aliasLabel`). */
const CATCH_ALL_LABEL = "*";

/** The name a catch-all delivers this recipient under, or null when another rule (or none, or a discarding `!*`) routed it. */
export function catchAllKey(address: string, route: Route): CatchAllKey | null {
  return route.action === "deliver" && route.alias.label === CATCH_ALL_LABEL ? catchAllKeyOf(address) : null;
}

/** RCPT to a refused name: the same words as an unknown recipient, a reason of its own for the log and the counts. */
export function refusedNameDecision(address: string, row: Pick<CatchAllName, "state" | "decided_by">): Decision | null {
  if (row.state !== "refused") return null;
  return decision(reply(550, "5.1.1", `${address}: no such recipient here`), "catchall_refused", { catchall: { refused_by: row.decided_by } });
}

/** What a message's DATA answer and checks found, as the learning catch-all reads them. */
export interface MessageFacts {
  reason: Reason;
  code: number;
  auth?: { spf: string; dkim: string; dmarc: string };
  /** rspamd's action, when it scanned the message. */
  scanAction?: string;
  /** DNSBL zones that list the client address. */
  dnsblListed: string[];
}

/** Refusals that say the message was spam or forged; other refusals (size, syntax, a destination's) say nothing of it. */
const SPAM_REASONS: ReadonlySet<Reason> = new Set(["spam", "gtube", "dmarc_reject", "spf_fail"]);
/** rspamd actions that mean spam (https://rspamd.com/doc/faq.html#what-are-rspamd-actions); "soft reject" is a deferral, not a verdict. */
const SPAM_ACTIONS: ReadonlySet<string> = new Set(["reject", "add header", "rewrite subject"]);

/**
 * A message's verdict, and why: spam by rspamd, a DNSBL listing, or failed
 * authentication (DMARC fail, or SPF fail without a passing DKIM signature);
 * good when it was accepted and nothing says spam; null when it tells nothing
 * (deferred, or refused for other reasons).
 */
export function messageVerdict(facts: MessageFacts): { verdict: "spam" | "good" | null; why: string[] } {
  const why: string[] = [];
  if (SPAM_REASONS.has(facts.reason)) why.push(facts.reason);
  if (facts.scanAction && SPAM_ACTIONS.has(facts.scanAction)) why.push(`rspamd ${facts.scanAction}`);
  for (const zone of facts.dnsblListed) why.push(`listed on ${zone}`);
  const auth = facts.auth;
  if (auth?.dmarc === "fail") why.push("DMARC fail");
  if (auth?.spf === "fail" && !auth.dkim.split(",").includes("pass")) why.push("SPF fail without DKIM pass");
  if (why.length) return { verdict: "spam", why: [...new Set(why)] };
  return { verdict: facts.code < 400 ? "good" : null, why };
}

/**
 * What becomes of a name after its counts moved: an admin's word (refused,
 * allowed again) and a refusal stand; a name with good mail is never
 * suggested; `threshold` spam messages and no good one make it suggested, or
 * with `apply` refused.
 */
export function nextState(row: Pick<CatchAllName, "spam" | "good" | "state">, mode: CatchAllLearn, threshold: number): CatchAllState {
  if (row.state === "refused" || row.state === "allowed") return row.state;
  if (mode === "off" || row.good > 0 || row.spam < threshold) return "learning";
  return mode === "apply" ? "refused" : "suggested";
}

// A listing answers 127.0.0.0/8 (RFC 5782 §2.1); 127.255.255.x is a list's
// refusal to answer (e.g. Spamhaus through a public resolver), no listing.
const isListing = (a: string) => a.startsWith("127.") && !a.startsWith("127.255.255.");

/** The zones listing `ip` (RFC 5782 §2.1: the reversed address under the zone); a failed lookup lists nothing. */
export async function dnsblListings(resolver: Pick<Resolver, "resolve">, ip: string, zones: readonly string[]): Promise<string[]> {
  const found = await Promise.all(zones.map((zone) => resolver.resolve(dnsblQueryName(ip, zone), "A").catch((err) => (err instanceof DnsError ? [] : Promise.reject(err)))));
  return zones.filter((_, i) => (found[i] as string[]).some(isListing));
}

export interface CatchAllOptions {
  db: DB;
  logger: Logger;
  resolver: Pick<Resolver, "resolve">;
  /** Read on each use: the settings apply without a restart. */
  settings: () => { learn: CatchAllLearn; threshold: number; dnsblZones: string[] };
  now?: () => number;
}

export interface CatchAllLearner {
  /** RCPT: the refusal of a refused catch-all name, else null. */
  refusal(address: string, route: Route): Promise<Decision | null>;
  /**
   * After the DATA answer: counts its verdict for each catch-all name of the
   * transaction; the verdict for the mail log, or null. Never throws: the
   * answer stands whatever happens to the counts.
   */
  learn(session: Readonly<Session>, answer: Decision): Promise<Facts | null>;
}

export function createCatchAllLearner({ db, logger, resolver, settings, now = Date.now }: CatchAllOptions): CatchAllLearner {
  async function factsOf(session: Readonly<Session>, answer: Decision): Promise<MessageFacts> {
    const given = (answer.facts ?? {}) as { auth?: MessageFacts["auth"]; scan?: { action?: string } };
    const zones = settings().dnsblZones;
    return {
      reason: answer.reason,
      code: answer.reply.code,
      ...(given.auth ? { auth: given.auth } : {}),
      ...(given.scan?.action ? { scanAction: given.scan.action } : {}),
      dnsblListed: zones.length ? await dnsblListings(resolver, session.remoteIp, zones) : [],
    };
  }

  async function count(key: CatchAllKey, verdict: "spam" | "good", why: string[]): Promise<void> {
    const { learn, threshold } = settings();
    const row = await countVerdict(db, key, verdict, now());
    const state = nextState(row, learn, threshold);
    if (state === row.state) return;
    await advanceCatchAllState(db, key, row.state, state, state === "refused" ? "auto" : null, now());
    const fields = { domain: key.domain, name: key.name, spam: row.spam, good: row.good, why };
    if (state === "refused") logger.warn("catchall.refused", fields);
    else if (state === "suggested") logger.info("catchall.suggested", fields);
  }

  return {
    async refusal(address, route) {
      const key = catchAllKey(address, route);
      const row = key && (await catchAllName(db, key));
      return row ? refusedNameDecision(address, row) : null;
    },
    async learn(session, answer) {
      // A message counts once per name, however many of its +tag forms it was sent to.
      const named = new Map(session.recipients.flatMap((r) => catchAllKey(r.address, r.route) ?? []).map((k) => [`${k.name}@${k.domain}`, k]));
      const keys = [...named.values()];
      if (keys.length === 0 || settings().learn === "off") return null;
      try {
        const { verdict, why } = messageVerdict(await factsOf(session, answer));
        if (!verdict) return null;
        for (const key of keys) await count(key, verdict, why);
        return { catchall: { verdict, ...(why.length ? { why } : {}) } };
      } catch (err) {
        logger.error("catchall.learn_failed", { session: session.id, error: err });
        return null;
      }
    },
  };
}
