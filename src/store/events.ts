// The mail log: one row per decision (an SMTP reply of ours, or one target's
// answer to a delivery), with its reason.
import type { Decision, Facts } from "../mail/decision.ts";
import { type HeaderField, headerValue } from "../mail/headers.ts";
import { type DB, hotStatement } from "./db.ts";
import { caseInsensitiveLike, commitWithoutWaitingForDisk } from "./dialect.ts";
import { countStat, statCategory } from "./stats.ts";
import type { Event, EventStage, NewEvent } from "./schema.ts";
import { type Pending, turnBatch } from "./turn-batch.ts";

/** Stored header blocks are capped: enough to debug a message, never a body. */
export const MAX_STORED_HEADERS = 32 * 1024;

const insertEvent = hotStatement((db, e: NewEvent) =>
  db.insertInto("events").values({
    at: e.at,
    session_id: e.session_id,
    remote_ip: e.remote_ip,
    stage: e.stage,
    code: e.code,
    enhanced: e.enhanced,
    text: e.text,
    reason: e.reason ?? null,
    mail_from: e.mail_from,
    recipients: e.recipients,
    domain: e.domain,
    message_id: e.message_id,
    subject: e.subject,
    headers: e.headers,
    detail: e.detail,
  }),
);

/** What one mail-log row is about; `mailLogEvent` makes the row. */
export interface MailLogEntry {
  at: number;
  sessionId: string;
  remoteIp: string;
  stage: EventStage;
  decision: Decision;
  mailFrom: string | null;
  /** The addresses the decision is about (the target, for a delivery). */
  recipients: string[];
  /** The recipient whose domain the row is filed under; the first of `recipients` when not given. */
  domainOf?: string;
  /** The message's headers, when the decision is about one; `headerBlock` is stored too when given. */
  message?: { headers: HeaderField[]; headerBlock?: string };
  /** Stage facts (client, TLS, size, target, …); the decision's own facts are added to them. */
  detail: Facts;
}

/** The one place mail-log rows are built: listener stages, deliveries and test messages. */
export function mailLogEvent(e: MailLogEntry): NewEvent {
  const { reply } = e.decision;
  const filedUnder = e.domainOf ?? e.recipients[0];
  return {
    at: e.at,
    session_id: e.sessionId,
    remote_ip: e.remoteIp,
    stage: e.stage,
    code: reply.code,
    enhanced: reply.enhanced,
    text: reply.text,
    reason: e.decision.reason,
    mail_from: e.mailFrom,
    recipients: e.recipients.length ? JSON.stringify(e.recipients) : null,
    domain: filedUnder ? filedUnder.slice(filedUnder.lastIndexOf("@") + 1).toLowerCase() : null,
    message_id: e.message ? (headerValue(e.message.headers, "message-id") ?? null) : null,
    subject: e.message ? (headerValue(e.message.headers, "subject") ?? null) : null,
    headers: e.message?.headerBlock || null,
    detail: JSON.stringify({ ...e.detail, ...e.decision.facts }),
  };
}

/**
 * Writes events (and the daily counts they make) in one transaction, in order.
 * No SMTP answer relies on the mail log, so its commit does not wait for the
 * disk: a power cut may lose the last lines, never mail.
 */
export function writeEvents(db: DB, events: NewEvent[]): Promise<void> {
  return commitWithoutWaitingForDisk(db, async (trx) => {
    for (const event of events) {
      const headers = event.headers && event.headers.length > MAX_STORED_HEADERS ? event.headers.slice(0, MAX_STORED_HEADERS) : event.headers;
      await insertEvent(trx, { ...event, headers });
      const category = statCategory(event);
      if (category) await countStat(trx, event.at, event.domain ?? null, category);
    }
  });
}

export interface EventRecorder {
  /** Queues the event; resolves once it is committed, rejects when it could not be written. */
  record(event: NewEvent): Promise<void>;
  /** Writes what is queued now; resolves once every event recorded so far is settled. */
  flush(): Promise<void>;
}

/**
 * The server's mail log: the events recorded during one event-loop turn (many
 * sessions' stages at once under load) are written in one transaction, so one
 * commit serves them all and their daily counts.
 */
export function createEventRecorder(db: DB): EventRecorder {
  const batch = turnBatch<NewEvent>((events) => writeBatch(db, events));
  return { record: batch.add, flush: batch.flush };
}

/** Settles every caller; never rejects. */
async function writeBatch(db: DB, batch: Pending<NewEvent>[]): Promise<void> {
  try {
    await writeEvents(db, batch.map((q) => q.item));
    for (const q of batch) q.resolve();
  } catch (err) {
    // The transaction was rolled back: each event alone again, so only the bad one is lost.
    if (batch.length === 1) return batch[0]!.reject(err);
    for (const q of batch) await writeBatch(db, [q]);
  }
}

export interface EventFilter {
  sessionId?: string;
  stage?: EventStage;
  domain?: string;
  /** Substring of the recipients. */
  recipient?: string;
  /** Substring of the envelope sender. */
  sender?: string;
  verdict?: "accepted" | "deferred" | "rejected";
  since?: number;
  /** Only events older than this id (a cursor for stable paging). */
  before?: number;
  limit?: number;
  offset?: number;
}

/** Newest first. */
export function listEvents(db: DB, filter: EventFilter = {}): Promise<Event[]> {
  const like = (s: string) => `%${s}%`;
  const op = caseInsensitiveLike(db);
  let q = db.selectFrom("events").selectAll();
  if (filter.sessionId) q = q.where("session_id", "=", filter.sessionId);
  if (filter.stage) q = q.where("stage", "=", filter.stage);
  if (filter.domain) q = q.where("domain", "=", filter.domain);
  if (filter.recipient) q = q.where("recipients", op, like(filter.recipient));
  if (filter.sender) q = q.where("mail_from", op, like(filter.sender));
  if (filter.verdict === "accepted") q = q.where("code", "<", 400);
  if (filter.verdict === "deferred") q = q.where("code", ">=", 400).where("code", "<", 500);
  if (filter.verdict === "rejected") q = q.where("code", ">=", 500);
  if (filter.since) q = q.where("at", ">=", filter.since);
  if (filter.before) q = q.where("id", "<", filter.before);
  return q.orderBy("id", "desc").limit(filter.limit ?? 100).offset(filter.offset ?? 0).execute();
}

export function eventById(db: DB, id: number): Promise<Event | undefined> {
  return db.selectFrom("events").selectAll().where("id", "=", id).executeTakeFirst();
}
