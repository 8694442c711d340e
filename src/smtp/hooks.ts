// The decisions of each SMTP stage, in the order the conversation reaches
// them (Haraka style: one hook per stage). Each returns the exact reply.
import { type AuthResults, authVerdict, stripForgedResults } from "../auth/inbound.ts";
import type { Srs } from "../auth/srs.ts";
import type { AbuseGuard } from "../policy/abuse.ts";
import type { ScanVerdict } from "../policy/scan.ts";
import type { Deliver } from "../delivery/index.ts";
import type { VacationResponder } from "../delivery/vacation.ts";
import type { Verdict } from "../routing/resolve.ts";
import type { Router } from "../routing/router.ts";
import { parseMailbox } from "../mail/address.ts";
import { contentVerdict } from "./content.ts";
import { type Reply, reply } from "../mail/reply.ts";
import type { AcceptedRecipient, InboundMessage, Session } from "./session.ts";

export interface StageHooks {
  connect(session: Session): Promise<Reply>;
  close(session: Session): void;
  mailFrom(session: Session, address: string, params: EsmtpParams): Promise<Reply>;
  /** On acceptance also returns the recipient with its routing, which the listener adds to the transaction. */
  rcptTo(session: Session, address: string, params: EsmtpParams): Promise<RcptResult>;
  /** The reply, and facts about the message for its mail-log event (e.g. authentication verdicts). */
  data(session: Session, message: InboundMessage): Promise<{ reply: Reply; facts?: Record<string, unknown> }>;
}

export type RcptResult = { reply: Reply; accepted?: AcceptedRecipient; facts?: Record<string, unknown> };

export const ACCEPT_CONNECT = reply(220, "2.0.0", "Connected");
export const ACCEPT_SENDER = reply(250, "2.1.0", "Sender OK");
export const ACCEPT_RECIPIENT = reply(250, "2.1.5", "Recipient OK");
export const ACCEPT_DROPPED = reply(250, "2.0.0", "Message accepted");

/** RFC 5321 requires accepting at least 100; 50 per message keeps one message's fan-out bounded. */
export const MAX_RECIPIENTS = 50;

/** ESMTP parameters of MAIL/RCPT by upper-case name; `true` for flags without a value. */
export type EsmtpParams = Record<string, string | true>;

// Parameters of the extensions advertised in EHLO (SIZE, 8BITMIME, SMTPUTF8); DSN is not offered.
const MAIL_PARAMS = new Set(["SIZE", "BODY", "SMTPUTF8"]);
const RCPT_PARAMS = new Set<string>();

/** RFC 5321 §4.1.1.11: a parameter we do not implement is refused, not silently dropped. */
export function paramsVerdict(params: EsmtpParams, allowed: Set<string>): Reply | null {
  const unknown = Object.keys(params).find((name) => !allowed.has(name));
  return unknown ? reply(555, "5.5.4", `Parameter ${unknown} not recognized or not implemented`) : null;
}

export function senderVerdict(address: string, params: EsmtpParams = {}): Reply {
  const badParam = paramsVerdict(params, MAIL_PARAMS);
  if (badParam) return badParam;
  if (address === "" || parseMailbox(address)) return ACCEPT_SENDER;
  return reply(501, "5.1.7", "Bad sender address syntax");
}

/** The RCPT reply for a routing verdict; unmanaged domains were refused by the resolver (never an open relay). */
export function recipientVerdict(verdict: Verdict, alreadyAccepted: number): Reply {
  if (verdict.action === "refuse") return verdict.reply;
  if (alreadyAccepted >= MAX_RECIPIENTS) return reply(452, "4.5.3", `Too many recipients (at most ${MAX_RECIPIENTS} per message)`);
  return ACCEPT_RECIPIENT;
}

export function sizeVerdict(message: InboundMessage, maxSize: number): Reply | null {
  return message.oversized ? reply(552, "5.3.4", `Message size exceeds the limit of ${maxSize} bytes`) : null;
}

/**
 * A bounce (or reply) to a rewritten sender address: valid ones go back to the
 * original sender; a forged or expired one is refused. null: not an SRS address of ours.
 */
export function srsVerdict(address: string, srs: Srs): Verdict | null {
  if (!srs.isSrsAddress(address)) return null;
  const alias = { id: 0, domain: srs.domain, label: "SRS" };
  const original = srs.reverse(address);
  const mailbox = original ? parseMailbox(original) : null;
  if (!mailbox || mailbox.isLiteral) return { action: "refuse", reply: reply(550, "5.1.1", "Invalid or expired SRS address"), alias };
  return { action: "deliver", targets: [{ kind: "address", address: mailbox.address, domain: mailbox.domain, port: null, alias }], alias };
}

export interface HookDeps {
  router: Router;
  srs: Srs;
  maxSize: number;
  hostname: string;
  /** SPF, DKIM, DMARC, ARC and BIMI of a message (spoofed results of ours already removed). */
  authenticate: (session: Session, raw: Buffer) => Promise<AuthResults>;
  abuse: AbuseGuard;
  /** Content scanning: whether it applies to this transaction (a scanner is configured and a recipient domain wants it), and the scan. */
  scan: { applies(session: Session): Promise<boolean>; run(session: Session, message: InboundMessage): Promise<ScanVerdict> };
  deliver: Deliver;
  vacations: VacationResponder;
  /** A reply to a verification mail: the destination its Reply-To confirms, or null when the address is not a valid one. */
  confirmDestination: (recipient: string, ip: string) => Promise<string | null>;
}

export function createHooks({ router, srs, maxSize, hostname, authenticate, abuse, scan, deliver, vacations, confirmDestination }: HookDeps): StageHooks {
  /**
   * The owner of a destination replied to its verification mail: confirmed as
   * the recipient is accepted, and the reply itself is discarded (a drop
   * recipient). Before greylisting: a person waits for this one.
   */
  async function confirmReply(address: string, ip: string): Promise<RcptResult | null> {
    const confirmed = await confirmDestination(address, ip);
    if (!confirmed) return null;
    const alias = { id: 0, domain: srs.domain, label: "confirmation" };
    return { reply: ACCEPT_RECIPIENT, accepted: { address, verdict: { action: "drop", alias } }, facts: { confirmed } };
  }

  return {
    connect: async (session) => (await abuse.onConnect(session)) ?? ACCEPT_CONNECT,
    close: (session) => abuse.onClose(session),
    async mailFrom(session, address, params) {
      const verdict = senderVerdict(address, params);
      if (verdict !== ACCEPT_SENDER) return verdict;
      session.mailFrom = address; // the guard matches the denylist against it
      const denied = await abuse.onMailFrom(session);
      session.mailFrom = null;
      return denied ?? ACCEPT_SENDER;
    },
    async rcptTo(session, address, params) {
      const badParam = paramsVerdict(params, RCPT_PARAMS);
      if (badParam) return { reply: badParam };
      const confirmation = await confirmReply(address, session.remoteIp);
      if (confirmation) return confirmation;
      const verdict = srsVerdict(address, srs) ?? (await router.resolve(address));
      const answer = recipientVerdict(verdict, session.recipients.length);
      if (answer !== ACCEPT_RECIPIENT || verdict.action === "refuse") return { reply: answer };
      const mailbox = parseMailbox(address)!;
      const guarded = await abuse.onRecipient(session, mailbox.address, mailbox.domain);
      if (guarded.reply) return { reply: guarded.reply };
      const facts = {
        // Destinations left out until verified: the log says so, the sender need not know.
        ...(verdict.action === "deliver" && verdict.unverified ? { unverified: verdict.unverified } : {}),
        // Why the sender skipped greylisting (allowlist, provider, brand TLD, auto-allowlist).
        ...(guarded.greylist ? { greylist: guarded.greylist } : {}),
      };
      return { reply: answer, accepted: { address: mailbox.address, verdict }, ...(Object.keys(facts).length ? { facts } : {}) };
    },
    async data(session, received) {
      const tooBig = sizeVerdict(received, maxSize);
      if (tooBig) return { reply: tooBig };
      const scanning = await scan.applies(session);
      // With a scanner, it judges GTUBE-like test strings too; without one, the built-in check does.
      const refused = contentVerdict(received.headers, scanning ? null : received.raw);
      if (refused) {
        if (refused.code === 554) await abuse.recordAbuse(session, "GTUBE");
        return { reply: refused };
      }
      const message = stripForgedResults(received, hostname);
      const auth = await authenticate(session, message.raw);
      const facts: Record<string, unknown> = { auth: { spf: auth.spf, dkim: auth.dkim, dmarc: auth.dmarc, arc: auth.arc, bimi: auth.bimi } };
      const rejected = authVerdict(auth, { exempt: session.allowlisted });
      if (rejected) return { reply: rejected, facts };
      const scanned = scanning ? await scan.run(session, message) : null;
      if (scanned) facts.scan = scanned.summary;
      if (scanned?.reply) {
        if (scanned.abusive) await abuse.recordAbuse(session, "spam");
        return { reply: scanned.reply, facts };
      }
      // Recipients of a drop alias are accepted and discarded; the mail log (and so the metrics) list them.
      const dropped = session.recipients.filter((r) => r.verdict.action === "drop").map((r) => r.address);
      if (dropped.length) facts.dropped = dropped;
      // Every recipient was a silently disabled alias (`!alias`): accepted and discarded.
      if (session.recipients.every((r) => r.verdict.action === "drop")) return { reply: ACCEPT_DROPPED, facts };
      const delivered = await deliver(session, message, auth, scanned?.headers ?? "");
      if (delivered.code < 400) await vacations.afterDelivery(session, message);
      return { reply: delivered, facts };
    },
  };
}
