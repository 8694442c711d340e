// The durable outbound queue (docs/delivery-and-authentication.md, "Outbound
// queue"): mail submitted by users (send-as) and the mail mailferry writes
// itself (DSNs, vacation replies, verification mails, alerts). A message is
// committed to the database before enqueue resolves, so a submission may
// answer 250 then; each recipient's outcome is stored as soon as it is known,
// so a partial delivery or a crash retries only the recipients still pending.
// Every message is DKIM-signed here as it leaves, whoever queued it (the server
// or a CLI command writing the table).
import { Readable } from "node:stream";
import type { Logger } from "../log.ts";
import { headerBlockEnd } from "../mail/headers.ts";
import { formatReply, reply } from "../mail/reply.ts";
import type { DB } from "../store/db.ts";
import { isPostgres } from "../store/dialect.ts";
import { awaitingDelayNotice, claimDue, dueOutbox, enqueue, outboxDone, outboxRetry, type QueueEntry, type QueueRecipient, recipientsOf, recordDelayNotice, recordRecipientReply } from "../store/deliveries.ts";
import { buildDsn, type FailedTarget } from "./dsn.ts";
import { signOriginated } from "./originated.ts";
import type { DeliveryResult, Relay } from "./relay.ts";
import { DELAY_NOTICE_AFTER_MS, GIVE_UP_AFTER_MS, RETRY_DELAYS_MS, retryPlan } from "./retry-schedule.ts";

export interface OutboundMessage {
  /** Envelope sender ("" for DSNs and notices). */
  from: string;
  /** Envelope recipients, anywhere. */
  to: string[];
  /** The message as submitted (signed at each attempt). */
  raw: Buffer;
  /** The credential's address: gets the DSN or the delay notice. Notices of mailferry's own have none, so they never get one. */
  submitter?: string;
}

export interface Outbox {
  /** Resolves with the queue id only after the row is committed durably (synchronous=FULL, store/db.ts). */
  enqueue(message: OutboundMessage): Promise<number>;
  /** Sends what is due now; resolves when this round is done. */
  runDue(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

const POLL_MS = 60_000;
/**
 * Several nodes on one PostgreSQL: what another node queued and did not send
 * (it died, or it was a CLI command) is picked up within seconds.
 */
const SHARED_POLL_MS = 5_000;
/** How long a node that took a message for an attempt keeps it (claimDue): longer than an attempt lasts. */
const CLAIM_MS = 15 * 60_000;

export interface OutboxDeps {
  db: DB;
  relay: Relay;
  /** The server's host name: its notices are signed for it (see originated.ts). */
  hostname: string;
  outboundPort: number;
  logger: Logger;
  now?: () => number;
}

export function createOutbox(deps: OutboxDeps): Outbox {
  const { db, logger, now = Date.now } = deps;
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<void> | null = null;
  let again = false;

  // One round at a time; a message queued during a round (a DSN or notice too) gets another round right after.
  const runDue = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          for (const entry of await dueOutbox(db, now())) {
            if (!(await claimDue(db, entry, now() + CLAIM_MS))) continue; // another node sends it
            if (await attemptOrReschedule(deps, now, entry)) again = true;
          }
          for (const entry of await awaitingDelayNotice(db, now() - DELAY_NOTICE_AFTER_MS)) {
            await sendDelayNotice(deps, now, entry);
            again = true;
          }
        } catch (err) {
          logger.error("outbox.failed", { error: err });
        }
      } while (again);
      running = null;
    })();
    return running;
  };

  return {
    async enqueue(message) {
      if (message.to.length === 0) throw new Error("an outbound message needs at least one recipient");
      const id = await enqueue(db, message, now());
      void runDue();
      return id;
    },
    runDue,
    start() {
      timer = setInterval(() => void runDue(), isPostgres(db) ? SHARED_POLL_MS : POLL_MS);
      timer.unref();
      // What a crash or a stop left queued goes out now, not a poll later.
      void runDue();
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * One message's attempt; true when it queued a DSN. An unexpected error (a bug,
 * the database) is logged and the message tried later as after a 4xx.
 */
async function attemptOrReschedule(deps: OutboxDeps, now: () => number, entry: QueueEntry): Promise<boolean> {
  try {
    return await attempt(deps, now, entry);
  } catch (err) {
    deps.logger.error("outbox.failed", { id: entry.id, error: err });
    const plan = retryPlan(entry.attempts + 1, entry.created_at, now());
    // Past the give-up time a failing message still waits between tries: an admin sees it in the queue.
    await outboxRetry(deps.db, entry.id, entry.attempts + 1, "retryAt" in plan ? plan.retryAt : now() + RETRY_DELAYS_MS.at(-1)!, String(err));
    return false;
  }
}

// Signed at each attempt rather than when queued: a retry carries the key that signs now.
async function signed(deps: OutboxDeps, entry: QueueEntry): Promise<{ message: Buffer; signedBy: string | null }> {
  const raw = Buffer.from(entry.raw);
  try {
    const result = await signOriginated(deps.db, deps.hostname, raw);
    if (!result.signedBy) deps.logger.warn("outbox.unsigned", { id: entry.id, reason: "no DKIM key covers the From domain" });
    return result;
  } catch (err) {
    // Sent unsigned rather than not at all: a sender's bounce matters more than its signature.
    deps.logger.error("outbox.unsigned", { id: entry.id, error: err });
    return { message: raw, signedBy: null };
  }
}

/** Sends to the recipients still pending, recording each answer as it comes; returns the deferred ones. */
async function sendPending(deps: OutboxDeps, entry: QueueEntry): Promise<DeliveryResult[]> {
  const pending = entry.recipients.filter((r) => r.status === "pending");
  if (pending.length === 0) return [];
  const { message, signedBy } = await signed(deps, entry);
  const to = pending.map((r) => ({ address: r.address, domain: r.address.slice(r.address.lastIndexOf("@") + 1).toLowerCase(), port: deps.outboundPort }));
  const deferred: DeliveryResult[] = [];
  await deps.relay.send([{ from: entry.mail_from, to, message: () => Readable.from([message]) }], async (result) => {
    const status = result.reply.code < 400 ? "delivered" : result.reply.code >= 500 ? "failed" : "pending";
    await recordRecipientReply(deps.db, entry.id, result.address, status, result.reply, result.mx);
    if (status === "pending") deferred.push(result);
    const fields = { id: entry.id, to: result.address, reply: formatReply(result.reply), attempts: entry.attempts + 1, dkim: signedBy ?? undefined };
    if (status === "delivered") deps.logger.info("outbox.sent", fields);
    else deps.logger.warn(status === "failed" ? "outbox.refused" : "outbox.deferred", fields);
  });
  return deferred;
}

async function attempt(deps: OutboxDeps, now: () => number, entry: QueueEntry): Promise<boolean> {
  const deferred = await sendPending(deps, entry);
  const attempts = entry.attempts + 1;
  const plan = retryPlan(attempts, entry.created_at, now());
  if (deferred.length > 0 && "retryAt" in plan) {
    await outboxRetry(deps.db, entry.id, attempts, plan.retryAt, formatReply(deferred[0]!.reply));
    deps.logger.info("outbox.retry_scheduled", { id: entry.id, attempts, retry_in_s: Math.round((plan.retryAt - now()) / 1000) });
    return false;
  }
  for (const result of deferred) await recordRecipientReply(deps.db, entry.id, result.address, "failed", result.reply, result.mx);
  if (deferred.length > 0) deps.logger.warn("outbox.gave_up", { id: entry.id, to: deferred.map((r) => r.address), attempts });
  return finish(deps, now, entry);
}

/** Every recipient delivered or failed: the message leaves the queue, and the submitter gets one DSN for the failed ones (RFC 3464); true when it did. */
async function finish(deps: OutboxDeps, now: () => number, entry: QueueEntry): Promise<boolean> {
  const settled = await recipientsOf(deps.db, entry.id);
  const failed = settled.filter((r) => r.status === "failed").map(target);
  const dsn = entry.submitter && failed.length > 0 ? notice(deps, now, entry, entry.submitter, failed, "failed") : undefined;
  await outboxDone(deps.db, entry.id, dsn, now());
  if (failed.length > 0) deps.logger.warn("outbox.dropped", { id: entry.id, to: failed.map((f) => f.target), dsn_to: dsn ? entry.submitter : undefined });
  return dsn !== undefined;
}

/** Once, 4 hours after queueing (retry-schedule.ts): the submitter learns which recipients are still being tried (RFC 3464 §2.3.3, Action: delayed). */
async function sendDelayNotice(deps: OutboxDeps, now: () => number, entry: QueueEntry): Promise<void> {
  const pending = entry.recipients.filter((r) => r.status === "pending").map(target);
  await recordDelayNotice(deps.db, entry.id, notice(deps, now, entry, entry.submitter!, pending, "delayed"), now());
  deps.logger.info("outbox.delay_notice", { id: entry.id, to: entry.submitter });
}

/** A recipient as the DSN lists it; one not tried yet reads as a plain temporary failure (RFC 3463 4.0.0). */
const target = (r: QueueRecipient): FailedTarget => ({ target: r.address, originalRecipient: r.address, reply: r.reply ?? reply(421, "4.0.0", "not tried yet"), remoteMta: r.remoteMta });

/** A DSN or delay notice to the submitter, from the null sender: it never gets a notice of its own. */
function notice(deps: OutboxDeps, now: () => number, entry: QueueEntry, to: string, targets: FailedTarget[], action: "failed" | "delayed") {
  const raw = Buffer.from(entry.raw);
  const end = headerBlockEnd(raw);
  const headers = raw.subarray(0, end === -1 ? raw.length : end).toString("utf8");
  const retryUntil = action === "delayed" ? { retryUntil: new Date(entry.created_at + GIVE_UP_AFTER_MS) } : {};
  return { from: "", to: [to], raw: buildDsn({ hostname: deps.hostname, to, arrival: new Date(entry.created_at), failures: targets, headers, now: new Date(now()), action, ...retryUntil }) };
}
