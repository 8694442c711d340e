// Delivery of an accepted message to its targets, answered in real time:
// the DATA reply tells the sender the truth (docs/delivery-and-authentication.md), targets that
// accepted are remembered so a retry does not send them the message twice,
// and permanent failures next to successes are reported in one DSN.
import type { Srs } from "../auth/srs.ts";
import type { Logger } from "../log.ts";
import { automaticReplyBlocked } from "../policy/backscatter.ts";
import type { Target } from "../routing/resolve.ts";
import { type Decision, decision, destinationReason, type Reason } from "../mail/decision.ts";
import { isAccepted, type Reply, reply } from "../mail/reply.ts";
import { openMessage } from "../mail/message.ts";
import type { InboundMessage, Session } from "../smtp/session.ts";
import type { DB } from "../store/db.ts";
import { claimBounce, forgetFingerprint, touchFingerprint } from "../store/deliveries.ts";
import { headerValue } from "../mail/headers.ts";
import { mailLogEvent } from "../store/events.ts";
import type { NewEvent } from "../store/schema.ts";
import { buildDsn } from "./dsn.ts";
import { fingerprint } from "./fingerprint.ts";
import { type DataAnswer, dataAnswer, type TargetOutcome } from "./outcome.ts";
import type { Outbox } from "./outbox.ts";
import type { Envelope, Relay } from "./relay.ts";
import { traceHeaders } from "./trace.ts";
import type { VacationResponder } from "./vacation.ts";
import type { Copy, CopyInput } from "./compose.ts";
import { sharesSeal, withSealOf } from "./shared-seal.ts";
import { postWebhook, type WebhookOptions, type WebhookPayload, webhookPayload } from "./webhook.ts";
import { webhookKey } from "../store/domains.ts";
import type { AuthResults } from "../auth/inbound.ts";
import { signingKey } from "../store/dkim-keys.ts";
import type { ForwardingDkim } from "../config/index.ts";

/** `extraHeaders`: added to every copy (the scanner's X-Spam-* verdict), "" for none. */
export type Deliver = (session: Readonly<Session>, message: InboundMessage, auth: AuthResults, extraHeaders: string) => Promise<Decision>;

/** A message first seen longer ago than this is refused: the sender has retried long enough. */
export const MAX_RETRY_AGE_MS = 5 * 86_400_000;

export interface DeliverDeps {
  db: DB;
  webhooks: WebhookOptions;
  relay: Relay;
  /** Builds each sealed (and maybe signed) copy (composeCopy, in the authentication workers). */
  compose: (input: CopyInput) => Promise<Copy>;
  /** forwarding.dkim_sign, read for each message (a live setting). */
  dkimSign: () => ForwardingDkim;
  srs: Srs;
  outbox: Outbox;
  hostname: string;
  outboundPort: number;
  messageTimeout: number;
  logger: Logger;
  recordEvent: (event: NewEvent) => Promise<void>;
  /** Remembers that a target accepted the message (store/deliveries.ts createDeliveredMarks); resolves once on disk. */
  markDelivered: (fingerprint: string, target: string) => Promise<void>;
  /** Vacation replies, sent after delivery like bounces. */
  vacations: VacationResponder;
}

interface Job {
  original: string;
  /** The managed domain whose alias took the original recipient: its key signs the copy. */
  aliasDomain: string;
  target: Target;
  key: string;
}

const targetKey = (t: Target) => (t.kind === "address" ? t.address.toLowerCase() : t.url);

export function createDeliver(deps: DeliverDeps): Deliver {
  let sequence = 0;
  const nextCopyId = (session: Readonly<Session>) => `${session.id}.${++sequence}`;

  return async (session, message, auth, extraHeaders) => {
    const fp = fingerprint(session, message);
    const state = await touchFingerprint(deps.db, fp);
    if (Date.now() - state.firstSeen > MAX_RETRY_AGE_MS) return TOO_LONG_RETRIED;
    const jobs = planJobs(session, state.delivered);
    const ledger = createLedger(deps, session, message, fp);
    const copies = await composeCopies(deps, { session, message, auth, extraHeaders, jobs, nextCopyId });
    const posting = postWebhooks(deps, session, message, auth, jobs, ledger);
    const sending = relayCopies(deps, copies, auth, ledger);
    await answerWithin(deps, session, message, Promise.all([sending, posting]), jobs, ledger);
    const answer = dataAnswer(ledger.outcomes, state.delivered.size);
    await afterDelivery(deps, session, message, fp, answer);
    if (!isRetryable(answer, message)) await forgetFingerprint(deps.db, fp);
    return decision(answer.reply, answer.reason);
  };
}

/**
 * Whether the same message may come again as a retry of this one: after a
 * temporary answer, or a 250 the sender may have missed (connection lost) when
 * the message names itself with a Message-ID. Without one, an identical
 * message after a 250 is a new message (an alert sent again, a script's
 * report) and is delivered again, so its fingerprint is forgotten.
 */
const isRetryable = (answer: DataAnswer, message: InboundMessage) => !isAccepted(answer.reply) || headerValue(message.headers, "message-id") !== undefined;

const TOO_LONG_RETRIED = decision(reply(550, "5.4.7", "This message has been retried for more than 5 days; giving up"), "too_long_retried");
const DELIVERY_TIMEOUT = reply(421, "4.4.7", "Delivery took too long, please try again later");

/** Each target once, for the first original recipient that leads to it; targets delivered on an earlier try are left out. */
function planJobs(session: Readonly<Session>, deliveredBefore: Set<string>): Job[] {
  const jobs: Job[] = [];
  const seen = new Set(deliveredBefore);
  for (const r of session.recipients) {
    if (r.route.action !== "deliver") continue;
    for (const target of r.route.targets) {
      const key = targetKey(target);
      if (seen.has(key)) continue;
      seen.add(key);
      jobs.push({ original: r.address, aliasDomain: r.route.alias.domain, target, key });
    }
  }
  return jobs;
}

/** The targets' answers: each is logged and remembered; those before the DATA answer also decide it. */
interface Ledger {
  /** `ours` is the reason when the answer is mailferry's own rather than the destination's. */
  settle(job: Job, answer: Reply, mx: string | null, detail?: Record<string, unknown>, ours?: Reason): Promise<void>;
  /** The DATA answer is given: later results are still logged and remembered (the retry skips them). */
  close(): void;
  outcomes: TargetOutcome[];
  answered: Set<string>;
}

function createLedger(deps: DeliverDeps, session: Readonly<Session>, message: InboundMessage, fp: string): Ledger {
  const outcomes: TargetOutcome[] = [];
  const answered = new Set<string>();
  let answering = true;
  return {
    outcomes,
    answered,
    close: () => (answering = false),
    async settle(job, answer, mx, extra = {}, ours) {
      if (answer.code < 400) await deps.markDelivered(fp, job.key);
      const webhook = job.target.kind === "webhook";
      const detail = { original_recipient: job.original, mx, fingerprint: fp, late: answering ? undefined : true, ...extra };
      await deps.recordEvent(
        mailLogEvent({ at: Date.now(), sessionId: session.id, remoteIp: session.remoteIp, stage: "delivery", decision: decision(answer, ours ?? destinationReason(answer, webhook)), mailFrom: session.mailFrom, recipients: [job.key], domainOf: job.original, message: { headers: message.headers }, detail }),
      );
      if (answering && !answered.has(job.key)) {
        answered.add(job.key);
        outcomes.push({ target: job.key, originalRecipient: job.original, reply: answer, remoteMta: mx, ...(ours ? { reason: ours } : {}) });
      }
    },
  };
}

interface ComposeInput {
  session: Readonly<Session>;
  message: InboundMessage;
  auth: AuthResults;
  extraHeaders: string;
  jobs: Job[];
  nextCopyId: (session: Readonly<Session>) => string;
}

/** What the mail log records of a copy's making (src/service/story.ts tells it). */
interface CopyFacts {
  jobs: Job[];
  /** The alias domain whose key sealed (and maybe signed) it; null when it has no active key. */
  signing_domain: string | null;
  /** The selector (s=) of that key's ARC seal and signature. */
  selector: string | null;
  arc_sealed: boolean;
  dkim_signed: boolean;
  friendly_from: boolean;
}

/** One sealed copy per original recipient, with the envelope to its address targets. */
async function composeCopies(deps: DeliverDeps, { session, message, auth, extraHeaders, jobs, nextCopyId }: ComposeInput): Promise<Map<Envelope, CopyFacts>> {
  const from = deps.srs.forward(session.mailFrom ?? "");
  const dkimSign = deps.dkimSign();
  const envelopes = new Map<Envelope, CopyFacts>();
  // The seal made for one alias, by signing key: the copies for other aliases of that key carry it too (withSealOf).
  const seals = new Map<string, Copy>();
  for (const original of new Set(jobs.map((j) => j.original))) {
    const addressJobs = jobs.filter((j) => j.original === original && j.target.kind === "address");
    if (addressJobs.length === 0) continue;
    const key = await signingKey(deps.db, addressJobs[0]!.aliasDomain);
    const input = {
      head: message.head,
      trace: traceHeaders({ session, hostname: deps.hostname, originalRecipient: original, id: nextCopyId(session), date: new Date() }) + extraHeaders,
      auth,
      alias: original,
      key,
      dkimSign,
    };
    const keyId = key && `${key.domain} ${key.selector}`;
    const shared = keyId ? seals.get(keyId) : undefined;
    const copy = shared ? withSealOf(shared, input) : await deps.compose(input);
    if (keyId && !shared && sharesSeal(copy)) seals.set(keyId, copy);
    if (copy.rewroteFrom) deps.logger.info("delivery.friendly_from", { session: session.id, alias: original, from_domain: auth.fromDomain, dmarc_policy: auth.dmarcPolicy });
    const envelope: Envelope = {
      from,
      to: addressJobs.map((j) => {
        const t = j.target as Extract<Target, { kind: "address" }>;
        return { address: t.address, domain: t.domain, port: t.port ?? deps.outboundPort };
      }),
      // The copy's own header block, then the body streamed from where it is held (memory or spool).
      message: () => openMessage({ head: copy.head, body: message.body }),
    };
    envelopes.set(envelope, { jobs: addressJobs, signing_domain: key?.domain ?? null, selector: key?.selector ?? null, arc_sealed: copy.sealed, dkim_signed: copy.dkimSigned, friendly_from: copy.rewroteFrom });
  }
  return envelopes;
}

/** Sends every copy through the relay; each target's answer goes to the ledger. */
async function relayCopies(deps: DeliverDeps, copies: Map<Envelope, CopyFacts>, auth: AuthResults, ledger: Ledger): Promise<void> {
  const authSummary = { spf: auth.spf, dkim: auth.dkim, dmarc: auth.dmarc, arc: auth.arc };
  // Each target is recorded as delivered the moment its destination accepts: a crash before
  // slower destinations answer must not make the sender's retry deliver this copy again.
  await deps.relay.send([...copies.keys()], async (result) => {
    const { jobs, ...facts } = copies.get(result.envelope)!;
    const job = jobs.find((j) => j.key === result.address.toLowerCase())!;
    await ledger.settle(job, result.reply, result.mx, { tls: result.tls, mta_sts: result.mtaSts, duration_ms: result.durationMs, mail_from: result.envelope.from, ...facts, auth: authSummary }, result.reason);
  });
}

/** Webhooks: one POST per URL (and signing domain), listing every original recipient that leads to it. */
async function postWebhooks(deps: DeliverDeps, session: Readonly<Session>, message: InboundMessage, auth: AuthResults, jobs: Job[], ledger: Ledger): Promise<void> {
  const webhookJobs = jobs.filter((j) => j.target.kind === "webhook");
  if (webhookJobs.length === 0) return;
  const building: { payload: Promise<WebhookPayload> | null } = { payload: null };
  // Built once, on the first URL that passes its checks.
  const payload = () => (building.payload ??= webhookPayload({ message, auth, session, hostname: deps.hostname, arrival: new Date() }));
  try {
    await Promise.all(webhookJobs.map((job) => postOne(deps, session, job, payload, ledger)));
  } finally {
    await building.payload?.then((built) => built.discard(), () => {});
  }
}

async function postOne(deps: DeliverDeps, session: Readonly<Session>, job: Job, payload: () => Promise<WebhookPayload>, ledger: Ledger): Promise<void> {
  const url = (job.target as Extract<Target, { kind: "webhook" }>).url;
  const recipients = session.recipients.filter((r) => r.route.action === "deliver" && r.route.targets.some((t) => t.kind === "webhook" && t.url === url)).map((r) => r.address);
  const started = performance.now();
  const outcome = await postWebhook(url, { payload, recipients }, await webhookKey(deps.db, job.aliasDomain), deps.webhooks);
  for (const [i, a] of outcome.attempts.entries()) {
    deps.logger.info("webhook.attempt_failed", { session: session.id, url: new URL(url).host, attempt: i + 1, status: a.status, error: a.error ?? undefined });
  }
  const attempts = outcome.attempts.map((a) => ({ status: a.status, error: a.error, excerpt: a.excerpt }));
  await ledger.settle(job, outcome.reply, null, { webhook: true, recipients, attempts, duration_ms: Math.round(performance.now() - started) }, outcome.reason);
}

/**
 * The sender waits for the DATA answer; past the bound the targets not yet
 * answered count as a 421. Deliveries still under way are recorded when they
 * finish, so the sender's retry skips them.
 */
async function answerWithin(deps: DeliverDeps, session: Readonly<Session>, message: InboundMessage, deliveries: Promise<unknown>, jobs: Job[], ledger: Ledger): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), deps.messageTimeout)));
  const finished = await Promise.race([deliveries.then(() => "done" as const), timedOut]);
  clearTimeout(timer);
  if (finished === "done") return;
  for (const job of jobs) {
    if (!ledger.answered.has(job.key)) ledger.outcomes.push({ target: job.key, originalRecipient: job.original, reply: DELIVERY_TIMEOUT, reason: "timeout", remoteMta: null });
  }
  ledger.close();
  // They still read the message: its spool file stays until they end.
  message.outliving.push(deliveries);
  deliveries.catch((err) => deps.logger.error("delivery.late_failure", { session: session.id, error: err }));
}

/** What follows the DATA answer, in one place: a DSN for permanent failures next to successes, then vacation replies. */
async function afterDelivery(deps: DeliverDeps, session: Readonly<Session>, message: InboundMessage, fp: string, answer: DataAnswer): Promise<void> {
  if (answer.bounce.length) await bounce(deps, session, message, fp, answer.bounce);
  if (isAccepted(answer.reply)) await deps.vacations.afterDelivery(session, message);
}

async function bounce(deps: DeliverDeps, session: Readonly<Session>, message: InboundMessage, fp: string, failures: TargetOutcome[]) {
  const sender = session.mailFrom ?? "";
  const blocked = automaticReplyBlocked(sender, message.headers);
  if (blocked) {
    deps.logger.info("bounce.suppressed", { session: session.id, reason: blocked });
    return;
  }
  const fresh: TargetOutcome[] = [];
  for (const f of failures) if (await claimBounce(deps.db, fp, f.target, f.reply.code)) fresh.push(f);
  if (fresh.length === 0) return;
  const dsn = buildDsn({ hostname: deps.hostname, to: sender, arrival: new Date(), failures: fresh, headers: message.headerBlock });
  await deps.outbox.enqueue({ from: "", to: [sender], raw: dsn });
  deps.logger.info("bounce.queued", { session: session.id, to: sender, targets: fresh.map((f) => f.target) });
}
