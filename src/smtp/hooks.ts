// The decisions of each SMTP stage, in the order the conversation reaches
// them. Each stage runs an ordered list of checks (like maddy's checkRunner,
// Haraka's hooks): the first that decides ends the stage, the others may add
// facts for the mail log. Checks read the session and never write it: what
// the listener should remember comes back in the stage's outcome.
import { type AuthResults, authDecision, stripForgedResults } from "../auth/inbound.ts";
import type { Srs } from "../auth/srs.ts";
import type { AbuseGuard } from "../policy/abuse.ts";
import type { CatchAllLearner } from "../policy/catchall.ts";
import type { ScanResult } from "../policy/scan.ts";
import type { Deliver } from "../delivery/index.ts";
import type { Route } from "../routing/resolve.ts";
import type { Router, RoutingView } from "../routing/router.ts";
import { parseMailbox } from "../mail/address.ts";
import { type Decision, decision, type Facts, isAbuse } from "../mail/decision.ts";
import { reply } from "../mail/reply.ts";
import { type MessageParts, openMessage, streamIncludes } from "../mail/message.ts";
import { contentDecision, GTUBE } from "./content.ts";
import type { AcceptedRecipient, InboundMessage, Session } from "./session.ts";

/** What a stage decided, and what the listener keeps on the session. */
export interface StageOutcome {
  decision: Decision;
  /** The client or its sender is on the allowlist (connect, MAIL). */
  allowlisted?: boolean;
  /** The recipient with its routing, added to the transaction (RCPT). */
  accepted?: AcceptedRecipient;
}

export interface StageHooks {
  connect(session: Readonly<Session>): Promise<StageOutcome>;
  close(session: Readonly<Session>): void;
  mailFrom(session: Readonly<Session>, address: string, params: EsmtpParams): Promise<StageOutcome>;
  rcptTo(session: Readonly<Session>, address: string, params: EsmtpParams): Promise<StageOutcome>;
  /** The decision carries facts about the message for its mail-log event (e.g. authentication results). */
  data(session: Readonly<Session>, message: InboundMessage): Promise<Decision>;
}

/** One check of a stage: a decision ends the stage; facts go to its mail-log event. */
type CheckResult = { decision?: Decision | null; facts?: Facts } | null;
type Check<In> = (input: In) => CheckResult | Promise<CheckResult>;

/** Runs the checks in order until one decides; the facts of every check that ran, merged. */
async function runChecks<In>(checks: readonly Check<In>[], input: In): Promise<{ decision: Decision | null; facts: Facts }> {
  const facts: Facts = {};
  for (const check of checks) {
    const result = await check(input);
    Object.assign(facts, result?.facts);
    if (result?.decision) return { decision: result.decision, facts };
  }
  return { decision: null, facts };
}

const refusal = (d: Decision | null): CheckResult => (d ? { decision: d } : null);
const withFacts = (d: Decision, facts: Facts): Decision => (Object.keys(facts).length ? { ...d, facts: { ...facts, ...d.facts } } : d);

export const ACCEPT_CONNECT = decision(reply(220, "2.0.0", "Connected"), "connected");
export const ACCEPT_SENDER = decision(reply(250, "2.1.0", "Sender OK"), "sender_ok");
export const ACCEPT_RECIPIENT = decision(reply(250, "2.1.5", "Recipient OK"), "recipient_ok");
export const ACCEPT_DROPPED = decision(reply(250, "2.0.0", "Message accepted"), "dropped");

/** RFC 5321 requires accepting at least 100; 50 per message keeps one message's fan-out bounded. */
export const MAX_RECIPIENTS = 50;

/** ESMTP parameters of MAIL/RCPT by upper-case name; `true` for flags without a value. */
export type EsmtpParams = Record<string, string | true>;

// Parameters of the extensions advertised in EHLO (SIZE, 8BITMIME, SMTPUTF8); DSN is not offered.
const MAIL_PARAMS = new Set(["SIZE", "BODY", "SMTPUTF8"]);
const RCPT_PARAMS = new Set<string>();

/** RFC 5321 §4.1.1.11: a parameter we do not implement is refused, not silently dropped. */
export function paramsDecision(params: EsmtpParams, allowed: Set<string>): Decision | null {
  const unknown = Object.keys(params).find((name) => !allowed.has(name));
  return unknown ? decision(reply(555, "5.5.4", `Parameter ${unknown} not recognized or not implemented`), "unknown_parameter") : null;
}

export function senderSyntaxDecision(address: string): Decision | null {
  return address === "" || parseMailbox(address) ? null : decision(reply(501, "5.1.7", "Bad sender address syntax"), "bad_syntax");
}

export function recipientLimitDecision(alreadyAccepted: number): Decision | null {
  return alreadyAccepted >= MAX_RECIPIENTS ? decision(reply(452, "4.5.3", `Too many recipients (at most ${MAX_RECIPIENTS} per message)`), "too_many_recipients") : null;
}

export function sizeDecision(message: InboundMessage, maxSize: number): Decision | null {
  return message.oversized ? decision(reply(552, "5.3.4", `Message size exceeds the limit of ${maxSize} bytes`), "oversize") : null;
}

/**
 * A bounce (or reply) to a rewritten sender address: valid ones go back to the
 * original sender; a forged or expired one is refused. null: not an SRS address of ours.
 */
export function srsRoute(address: string, srs: Srs): Route | null {
  if (!srs.isSrsAddress(address)) return null;
  const alias = { id: 0, domain: srs.domain, label: "SRS" };
  const original = srs.reverse(address);
  const mailbox = original ? parseMailbox(original) : null;
  if (!mailbox || mailbox.isLiteral) return { action: "refuse", reply: reply(550, "5.1.1", "Invalid or expired SRS address"), reason: "srs_invalid", alias };
  return { action: "deliver", targets: [{ kind: "address", address: mailbox.address, domain: mailbox.domain, port: null, alias }], alias };
}

export interface HookDeps {
  router: Router;
  srs: Srs;
  maxSize: number;
  hostname: string;
  /** SPF, DKIM, DMARC, ARC and BIMI of a message (spoofed results of ours already removed). */
  authenticate: (session: Readonly<Session>, message: MessageParts) => Promise<AuthResults>;
  abuse: AbuseGuard;
  /** Content scanning: whether it applies to this transaction (a scanner is configured and a recipient domain wants it), and the scan. */
  scan: { applies(session: Readonly<Session>): Promise<boolean>; run(session: Readonly<Session>, message: InboundMessage): Promise<ScanResult> };
  /** The delivery targets of an accepted message; bounces and vacation replies follow from there. */
  deliver: Deliver;
  /** A reply to a verification mail: the destination its Reply-To confirms, or null when the address is not a valid one. */
  confirmDestination: (recipient: string, ip: string) => Promise<string | null>;
  /** The learning catch-all: refused names at RCPT, each DATA answer's verdict counted for the catch-all names. */
  catchAll: CatchAllLearner;
}

const clientOf = (session: Readonly<Session>, mailFrom = "") => ({ remoteIp: session.remoteIp, verifiedHost: session.verifiedHost, mailFrom });

export function createHooks(deps: HookDeps): StageHooks {
  const { abuse } = deps;
  const mailChecks: Check<EnvelopeCommand>[] = [({ params }) => refusal(paramsDecision(params, MAIL_PARAMS)), ({ address }) => refusal(senderSyntaxDecision(address))];
  const rcpt = createRcptStage(deps);
  const data = createDataStage(deps);

  return {
    async connect(session) {
      const { allowlisted, denied } = await abuse.screen(clientOf(session), "connect");
      return { decision: denied ?? (await abuse.admit({ ...session, allowlisted })) ?? ACCEPT_CONNECT, allowlisted };
    },
    close: (session) => abuse.onClose(session),
    async mailFrom(session, address, params) {
      const { decision } = await runChecks(mailChecks, { session, address, params });
      if (decision) return { decision };
      const { allowlisted, denied } = await abuse.screen(clientOf(session, address), "mail");
      if (denied) return { decision: denied };
      // The allowlist may now match the sender.
      return { decision: ACCEPT_SENDER, allowlisted: session.allowlisted || allowlisted };
    },
    rcptTo: (session, address, params) => rcpt(session, address, params),
    async data(session, message) {
      const answer = await data(session, message);
      const learned = await deps.catchAll.learn(session, answer);
      return learned ? withFacts(answer, learned) : answer;
    },
  };
}

/** A MAIL or RCPT command: the address and its ESMTP parameters. */
interface EnvelopeCommand {
  session: Readonly<Session>;
  address: string;
  params: EsmtpParams;
}

/** What the RCPT checks share: the routing check leaves the route for the checks after it and for the transaction. */
interface RcptTransaction extends EnvelopeCommand {
  routing: RoutingView;
  route?: Extract<Route, { action: "deliver" | "drop" }>;
}

/** RCPT: parameters, a reply confirming a destination, routing (SRS first), the recipient limit, a refused catch-all name, then rate limit and greylisting. */
function createRcptStage({ router, srs, abuse, confirmDestination, catchAll }: HookDeps) {
  const checks: Check<RcptTransaction>[] = [
    ({ params }) => refusal(paramsDecision(params, RCPT_PARAMS)),
    /**
     * The owner of a destination replied to its verification mail: confirmed as
     * the recipient is accepted, and the reply itself is discarded (a drop
     * recipient). Before greylisting: a person waits for this one.
     */
    async (tx) => {
      const confirmed = await confirmDestination(tx.address, tx.session.remoteIp);
      if (!confirmed) return null;
      tx.route = { action: "drop", alias: { id: 0, domain: srs.domain, label: "confirmation" } };
      return { decision: decision(ACCEPT_RECIPIENT.reply, "destination_confirmed", { confirmed }) };
    },
    (tx) => {
      const route = srsRoute(tx.address, srs) ?? tx.routing.route(tx.address);
      // Unmanaged domains were refused by the router (never an open relay).
      if (route.action === "refuse") return { decision: decision(route.reply, route.reason, route.facts) };
      tx.route = route;
      // The rule that matched, with a regex's captures and the plus tag, for the message's
      // story; destinations left out until verified: the log says so, the sender need not know.
      if (route.action === "drop") return { facts: { rule: route.alias.label } };
      const { captures, tag, unverified } = route;
      return { facts: { rule: route.alias.label, ...(captures ? { captures } : {}), ...(tag ? { tag } : {}), ...(unverified ? { unverified } : {}) } };
    },
    ({ session }) => refusal(recipientLimitDecision(session.recipients.length)),
    async ({ address, route }) => refusal(route ? await catchAll.refusal(address, route) : null),
    async ({ session, address }) => {
      const mailbox = parseMailbox(address)!;
      const guarded = await abuse.onRecipient(session, mailbox.address, mailbox.domain);
      // Why the sender skipped greylisting (allowlist, provider, brand TLD, auto-allowlist).
      return { decision: guarded.refusal, ...(guarded.greylist ? { facts: { greylist: guarded.greylist } } : {}) };
    },
  ];

  return async (session: Readonly<Session>, given: string, params: EsmtpParams): Promise<StageOutcome> => {
    // `postmaster` without a domain (RFC 5321 §4.5.1) is handled as the server's postmaster address.
    const routing = await router.view();
    const address = routing.recipient(given);
    const tx: RcptTransaction = { session, address, params, routing };
    const { decision: decided, facts } = await runChecks(checks, tx);
    // A confirmation is accepted as given; a refusal carries its own facts only.
    if (decided) return decided.reason === "destination_confirmed" ? { decision: decided, accepted: { address, route: tx.route! } } : { decision: decided };
    return { decision: withFacts(ACCEPT_RECIPIENT, facts), accepted: { address: parseMailbox(address)!.address, route: tx.route! } };
  };
}

/** What the DATA checks share: each check adds what it found for the next ones and for delivery. */
interface DataTransaction {
  session: Readonly<Session>;
  received: InboundMessage;
  /** With a scanner, it judges GTUBE-like test strings too; without one, the built-in check does. */
  scanning: boolean;
  /** The message with forged Authentication-Results of ours removed. */
  message?: InboundMessage;
  auth?: AuthResults;
  scanned?: ScanResult;
}

/** DATA: size, content, authentication, scan; then the delivery targets. */
function createDataStage({ maxSize, hostname, authenticate, abuse, scan, deliver }: HookDeps) {
  const checks: Check<DataTransaction>[] = [
    ({ received }) => refusal(sizeDecision(received, maxSize)),
    async ({ received, scanning }) => refusal(contentDecision(received.headers, !scanning && (await streamIncludes(openMessage(received), GTUBE)))),
    async (tx) => {
      tx.message = stripForgedResults(tx.received, hostname);
      const auth = (tx.auth = await authenticate(tx.session, tx.message));
      return { decision: authDecision(auth, { exempt: tx.session.allowlisted }), facts: { auth: { spf: auth.spf, dkim: auth.dkim, dmarc: auth.dmarc, arc: auth.arc, bimi: auth.bimi, from_domain: auth.fromDomain, dmarc_policy: auth.dmarcPolicy, aligned_dkim: auth.alignedDkim } } };
    },
    async (tx) => {
      if (!tx.scanning) return null;
      tx.scanned = await scan.run(tx.session, tx.message!);
      return { decision: tx.scanned.refusal, facts: { scan: tx.scanned.summary } };
    },
  ];

  return async (session: Readonly<Session>, received: InboundMessage): Promise<Decision> => {
    const tx: DataTransaction = { session, received, scanning: await scan.applies(session) };
    const { decision: refused, facts } = await runChecks(checks, tx);
    if (refused) {
      if (isAbuse(refused.reason)) await abuse.recordAbuse(session, refused.reason === "gtube" ? "GTUBE" : refused.reason);
      return withFacts(refused, facts);
    }
    // Recipients of a drop alias are accepted and discarded; the mail log (and so the metrics) list them.
    const dropped = session.recipients.filter((r) => r.route.action === "drop").map((r) => r.address);
    if (dropped.length) facts.dropped = dropped;
    // Every recipient was a silently disabled alias (`!alias`): accepted and discarded.
    if (session.recipients.every((r) => r.route.action === "drop")) return withFacts(ACCEPT_DROPPED, facts);
    return withFacts(await deliver(session, tx.message!, tx.auth!, tx.scanned?.headers ?? ""), facts);
  };
}
