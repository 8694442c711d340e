// Delivery of an accepted message to its targets, answered in real time:
// the DATA reply tells the sender the truth (SPEC §3.10-11), targets that
// accepted are remembered so a retry does not send them the message twice,
// and permanent failures next to successes are reported in one DSN.
import { Readable } from "node:stream";
import type { Srs } from "../auth/srs.ts";
import type { Logger } from "../log.ts";
import { automaticReplyBlocked } from "../policy/backscatter.ts";
import type { Target } from "../routing/resolve.ts";
import { headerValue } from "../mail/headers.ts";
import { type Reply, reply } from "../mail/reply.ts";
import type { InboundMessage, Session } from "../smtp/session.ts";
import type { DB } from "../store/db.ts";
import { claimBounce, markDelivered, touchFingerprint } from "../store/deliveries.ts";
import type { NewEvent } from "../store/schema.ts";
import { buildDsn } from "./dsn.ts";
import { fingerprint } from "./fingerprint.ts";
import { dataAnswer, type TargetOutcome } from "./outcome.ts";
import type { Outbox } from "./outbox.ts";
import type { Envelope, Relay } from "./relay.ts";
import { traceHeaders } from "./trace.ts";
import type { Copy, CopyInput } from "./compose.ts";
import { postWebhook, webhookPayload, type WebhookOptions } from "./webhook.ts";
import { webhookKey } from "../store/domains.ts";
import type { AuthResults } from "../auth/inbound.ts";
import { signingKey } from "../store/dkim-keys.ts";

/** `extraHeaders`: added to every copy (the scanner's X-Spam-* verdict), "" for none. */
export type Deliver = (session: Session, message: InboundMessage, auth: AuthResults, extraHeaders: string) => Promise<Reply>;

/** A message first seen longer ago than this is refused: the sender has retried long enough. */
export const MAX_RETRY_AGE_MS = 5 * 86_400_000;

export interface DeliverDeps {
  db: DB;
  webhooks: WebhookOptions;
  relay: Relay;
  /** Builds each signed, sealed copy (composeCopy, in the authentication workers). */
  compose: (input: CopyInput) => Promise<Copy>;
  srs: Srs;
  outbox: Outbox;
  hostname: string;
  outboundPort: number;
  messageTimeout: number;
  logger: Logger;
  recordEvent: (event: NewEvent) => Promise<void>;
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
  const { db, relay, srs, hostname } = deps;
  let sequence = 0;

  return async (session, message, auth, extraHeaders) => {
    const fp = fingerprint(session, message);
    const state = await touchFingerprint(db, fp);
    if (Date.now() - state.firstSeen > MAX_RETRY_AGE_MS) {
      return reply(550, "5.4.7", "This message has been retried for more than 5 days; giving up");
    }

    // Each target once, for the first original recipient that leads to it.
    const jobs: Job[] = [];
    const seen = new Set(state.delivered);
    for (const r of session.recipients) {
      if (r.verdict.action !== "deliver") continue;
      for (const target of r.verdict.targets) {
        const key = targetKey(target);
        if (seen.has(key)) continue;
        seen.add(key);
        jobs.push({ original: r.address, aliasDomain: r.verdict.alias.domain, target, key });
      }
    }

    const outcomes: TargetOutcome[] = [];
    const copies = new Map<Envelope, { signed: boolean; friendly_from: boolean }>();
    const answered = new Set<string>();
    let answering = true;
    const settle = async (job: Job, answer: Reply, mx: string | null, extra: Record<string, unknown> = {}) => {
      // Results that arrive after the DATA answer are still recorded: the retry then skips those targets.
      if (answer.code < 400) await markDelivered(db, fp, job.key);
      await deps.recordEvent(deliveryEvent(session, message, job, answer, mx, { fingerprint: fp, late: answering ? undefined : true, ...extra }));
      if (answering && !answered.has(job.key)) {
        answered.add(job.key);
        outcomes.push({ target: job.key, originalRecipient: job.original, reply: answer, remoteMta: mx });
      }
    };

    const from = srs.forward(session.mailFrom ?? "");
    const envelopes = new Map<Envelope, Job[]>();
    const authSummary = { spf: auth.spf, dkim: auth.dkim, dmarc: auth.dmarc, arc: auth.arc };
    for (const original of new Set(jobs.map((j) => j.original))) {
      const addressJobs = jobs.filter((j) => j.original === original && j.target.kind === "address");
      if (addressJobs.length === 0) continue;
      const id = `${session.id}.${++sequence}`;
      const copy = await deps.compose({
        raw: message.raw,
        bodyOffset: message.bodyOffset,
        trace: traceHeaders({ session, hostname, originalRecipient: original, id, date: new Date() }) + extraHeaders,
        auth,
        alias: original,
        key: await signingKey(db, addressJobs[0]!.aliasDomain),
      });
      if (copy.rewroteFrom) deps.logger.info("delivery.friendly_from", { session: session.id, alias: original, from_domain: auth.fromDomain, dmarc_policy: auth.dmarcPolicy });
      const envelope: Envelope = {
        from,
        to: addressJobs.map((j) => {
          const t = j.target as Extract<Target, { kind: "address" }>;
          return { address: t.address, domain: t.domain, port: t.port ?? deps.outboundPort };
        }),
        message: () => Readable.from([copy.message]),
      };
      envelopes.set(envelope, addressJobs);
      copies.set(envelope, { signed: copy.signed, friendly_from: copy.rewroteFrom });
    }
    // Webhooks: one POST per URL (and signing domain), listing every original recipient that leads to it.
    const webhookJobs = jobs.filter((j) => j.target.kind === "webhook");
    const posting = webhookJobs.length
      ? (async () => {
          const payload = await webhookPayload({ raw: message.raw, auth, session, hostname, arrival: new Date() }, []);
          await Promise.all(
            webhookJobs.map(async (job) => {
              const url = (job.target as Extract<Target, { kind: "webhook" }>).url;
              const recipients = session.recipients.filter((r) => r.verdict.action === "deliver" && r.verdict.targets.some((t) => t.kind === "webhook" && t.url === url)).map((r) => r.address);
              const started = performance.now();
              const outcome = await postWebhook(url, { ...payload, recipients, session: { ...(payload.session as object), recipient: recipients[0] } }, await webhookKey(db, job.aliasDomain), deps.webhooks);
              for (const [i, a] of outcome.attempts.entries()) {
                deps.logger.info("webhook.attempt_failed", { session: session.id, url: new URL(url).host, attempt: i + 1, status: a.status, error: a.error ?? undefined });
              }
              const attempts = outcome.attempts.map((a) => ({ status: a.status, error: a.error, excerpt: a.excerpt }));
              await settle(job, outcome.reply, null, { webhook: true, recipients, attempts, duration_ms: Math.round(performance.now() - started) });
            }),
          );
        })()
      : Promise.resolve();

    const sending = relay.send([...envelopes.keys()]).then(async (results) => {
      for (const result of results) {
        const job = envelopes.get(result.envelope)!.find((j) => j.key === result.address.toLowerCase())!;
        await settle(job, result.reply, result.mx, { tls: result.tls, duration_ms: result.durationMs, mail_from: from, ...copies.get(result.envelope), auth: authSummary });
      }
    });
    // The sender waits for this answer; past the bound it gets a 421. Deliveries still
    // under way are recorded when they finish, so its retry skips them.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), deps.messageTimeout)));
    const finished = await Promise.race([Promise.all([sending, posting]).then(() => "done" as const), timedOut]);
    clearTimeout(timer);
    if (finished === "timeout") {
      const late = reply(421, "4.4.7", "Delivery took too long, please try again later");
      for (const job of jobs) if (!answered.has(job.key)) outcomes.push({ target: job.key, originalRecipient: job.original, reply: late, remoteMta: null });
      answering = false;
      Promise.all([sending, posting]).catch((err) => deps.logger.error("delivery.late_failure", { session: session.id, error: err }));
    }

    const answer = dataAnswer(outcomes, state.delivered.size);
    if (answer.bounce.length) await bounce(session, message, fp, answer.bounce);
    return answer.reply;
  };

  async function bounce(session: Session, message: InboundMessage, fp: string, failures: TargetOutcome[]) {
    const sender = session.mailFrom ?? "";
    const blocked = automaticReplyBlocked(sender, message.headers);
    if (blocked) {
      deps.logger.info("bounce.suppressed", { session: session.id, reason: blocked });
      return;
    }
    const fresh: TargetOutcome[] = [];
    for (const f of failures) if (await claimBounce(db, fp, f.target, f.reply.code)) fresh.push(f);
    if (fresh.length === 0) return;
    const dsn = buildDsn({ hostname, to: sender, arrival: new Date(), failures: fresh, headers: message.headerBlock });
    await deps.outbox.queue(sender, dsn);
    deps.logger.info("bounce.queued", { session: session.id, to: sender, targets: fresh.map((f) => f.target) });
  }
}

function deliveryEvent(session: Session, message: InboundMessage, job: Job, answer: Reply, mx: string | null, detail: Record<string, unknown>): NewEvent {
  const target = job.key;
  return {
    at: Date.now(),
    session_id: session.id,
    remote_ip: session.remoteIp,
    stage: "delivery",
    code: answer.code,
    enhanced: answer.enhanced,
    text: answer.text,
    mail_from: session.mailFrom,
    recipients: JSON.stringify([target]),
    domain: job.original.slice(job.original.lastIndexOf("@") + 1),
    message_id: headerValue(message.headers, "message-id") ?? null,
    subject: headerValue(message.headers, "subject") ?? null,
    headers: null,
    detail: JSON.stringify({ original_recipient: job.original, mx, ...detail }),
  };
}
