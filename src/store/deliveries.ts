// What already happened to a message: targets that accepted it (so a retry
// by the sender skips them), bounces already sent, and DSNs still to send.
import type { Selectable } from "kysely";
import { type DB, hotStatement } from "./db.ts";
import { commitWithoutWaitingForDisk, isPostgres } from "./dialect.ts";
import type { OutboxRecipientsTable } from "./schema.ts";
import { turnBatch } from "./turn-batch.ts";

export interface FingerprintState {
  firstSeen: number;
  delivered: Set<string>;
}

// Each forwarded message runs these: compiled once (see hotStatement).
const upsertFingerprint = hotStatement((db, v: { id: string; now: number }) =>
  db
    .insertInto("fingerprints")
    .values({ id: v.id, first_seen: v.now, last_seen: v.now })
    .onConflict((oc) => oc.column("id").doUpdateSet({ last_seen: v.now }))
    .returning(["first_seen"]),
);
const selectDelivered = hotStatement((db, v: { fingerprint: string }) => db.selectFrom("delivered").select("target").where("fingerprint", "=", v.fingerprint));
const insertDelivered = hotStatement((db, v: { fingerprint: string; target: string; at: number }) =>
  db.insertInto("delivered").values({ fingerprint: v.fingerprint, target: v.target, at: v.at }).onConflict((oc) => oc.doNothing()),
);

/**
 * Records this attempt and returns what earlier attempts achieved. The row's
 * commit does not wait for the disk: a power cut that loses it loses no mark of
 * a delivered target, since each mark's commit waits for the disk and its sync
 * takes every earlier commit along (dialect.ts commitWithoutWaitingForDisk).
 */
export async function touchFingerprint(db: DB, id: string, now = Date.now()): Promise<FingerprintState> {
  const [row] = await commitWithoutWaitingForDisk(db, (trx) => upsertFingerprint(trx, { id, now }));
  const delivered = await selectDelivered(db, { fingerprint: id });
  return { firstSeen: row!.first_seen, delivered: new Set(delivered.map((d) => d.target)) };
}

/** The message can no longer come as a retry: an identical one later is a new message (delivered, bounced rows go with it). */
export async function forgetFingerprint(db: DB, id: string): Promise<void> {
  await db.deleteFrom("fingerprints").where("id", "=", id).execute();
}

/** A target that accepted the message with this fingerprint. */
export interface DeliveredMark {
  fingerprint: string;
  target: string;
  at: number;
}

/** Rows per statement: far below SQLite's and PostgreSQL's limits on bound values. */
const MARKS_PER_STATEMENT = 500;

/**
 * Commits the marks, waiting for the disk (synchronous=FULL, db.ts): one
 * statement, so one commit (and one round trip to PostgreSQL), for up to
 * MARKS_PER_STATEMENT of them.
 */
export async function markDelivered(db: DB, marks: DeliveredMark[]): Promise<void> {
  if (marks.length === 1) return void (await insertDelivered(db, marks[0]!));
  for (let i = 0; i < marks.length; i += MARKS_PER_STATEMENT) {
    await db.insertInto("delivered").values(marks.slice(i, i + MARKS_PER_STATEMENT)).onConflict((oc) => oc.doNothing()).execute();
  }
}

/**
 * The server's delivered marks: the marks made during one event-loop turn
 * (many messages' deliveries answered at once under load) commit together,
 * so one wait for the disk serves them all. Each resolves once on disk; when
 * the write fails, each rejects (marks written before the failure stay: a
 * mark is only ever a hint that spares a retry a duplicate).
 */
export function createDeliveredMarks(db: DB): (fingerprint: string, target: string) => Promise<void> {
  const batch = turnBatch<DeliveredMark>(async (pending) => {
    try {
      await markDelivered(db, pending.map((p) => p.item));
      for (const p of pending) p.resolve();
    } catch (err) {
      for (const p of pending) p.reject(err);
    }
  });
  return (fingerprint, target) => batch.add({ fingerprint, target, at: Date.now() });
}

/** True the first time for (fingerprint, target, code): a bounce is sent at most once for each. */
export async function claimBounce(db: DB, fingerprint: string, target: string, code: number, now = Date.now()): Promise<boolean> {
  const row = await db.insertInto("bounced").values({ fingerprint, target, code, at: now }).onConflict((oc) => oc.doNothing()).returning("at").executeTakeFirst();
  return row !== undefined;
}

/** A message for the outbound queue, as the store keeps it. */
export interface QueuedMessage {
  from: string;
  to: string[];
  raw: Buffer;
  submitter?: string;
}

/** Stores the message and its recipients in one transaction; committed (synchronous=FULL, db.ts) when it resolves. */
export async function enqueue(db: DB, message: QueuedMessage, now = Date.now()): Promise<number> {
  return db.transaction().execute((trx) => enqueueWith(trx, message, now));
}

/** The inserts of enqueue, inside a transaction the caller holds. */
async function enqueueWith(trx: DB, message: QueuedMessage, now: number): Promise<number> {
  const row = await trx
    .insertInto("outbox")
    .values({ mail_from: message.from, submitter: message.submitter ?? null, raw: message.raw, next_attempt: now, last_error: null, created_at: now, delay_notice_at: null })
    .returning("id")
    .executeTakeFirstOrThrow();
  const addresses = [...new Set(message.to)];
  await trx.insertInto("outbox_recipients").values(addresses.map((address) => ({ outbox_id: row.id, address }))).execute();
  return row.id;
}

export interface QueueEntry {
  id: number;
  mail_from: string;
  submitter: string | null;
  raw: Uint8Array;
  attempts: number;
  next_attempt: number;
  last_error: string | null;
  created_at: number;
  delay_notice_at: number | null;
  recipients: QueueRecipient[];
}

export interface QueueRecipient {
  address: string;
  status: "pending" | "delivered" | "failed";
  reply: { code: number; enhanced: string; text: string } | null;
  remoteMta: string | null;
}

async function withRecipients<T extends { id: number }>(db: DB, rows: T[]): Promise<(T & { recipients: QueueRecipient[] })[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const recipients = await db.selectFrom("outbox_recipients").selectAll().where("outbox_id", "in", ids).orderBy("address").execute();
  return rows.map((row) => ({ ...row, recipients: recipients.filter((r) => r.outbox_id === row.id).map(asRecipient) }));
}

type RecipientRow = Selectable<OutboxRecipientsTable>;

const asRecipient = (r: RecipientRow): QueueRecipient => ({
  address: r.address,
  status: r.status,
  reply: r.reply_code === null ? null : { code: r.reply_code, enhanced: r.reply_enhanced ?? "", text: r.reply_text ?? "" },
  remoteMta: r.remote_mta,
});

/** One message's recipients as stored now. */
export async function recipientsOf(db: DB, id: number): Promise<QueueRecipient[]> {
  return (await db.selectFrom("outbox_recipients").selectAll().where("outbox_id", "=", id).orderBy("address").execute()).map(asRecipient);
}

/** Messages whose next attempt is due, oldest first, a round's worth. */
export async function dueOutbox(db: DB, now = Date.now()): Promise<QueueEntry[]> {
  return withRecipients(db, await db.selectFrom("outbox").selectAll().where("next_attempt", "<=", now).orderBy("id").limit(50).execute());
}

/**
 * Takes a due message for one attempt, so that of several nodes on one
 * PostgreSQL exactly one sends it: its next attempt moves to `leaseUntil`
 * unless another node moved it first (the UPDATE waits for that node's and
 * then finds the row changed). A node that dies while sending leaves the
 * message due again at `leaseUntil`, its recipients already answered settled.
 * On SQLite one server owns the database: nothing to take.
 */
export async function claimDue(db: DB, entry: Pick<QueueEntry, "id" | "next_attempt">, leaseUntil: number): Promise<boolean> {
  if (!isPostgres(db)) return true;
  const result = await db.updateTable("outbox").set({ next_attempt: leaseUntil }).where("id", "=", entry.id).where("next_attempt", "=", entry.next_attempt).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

const LISTED = ["id", "mail_from", "submitter", "attempts", "next_attempt", "last_error", "created_at", "delay_notice_at"] as const;

/** The queue for the list in the CLI, UI and API, oldest first (the messages' bytes are left out). */
export async function listQueue(db: DB, limit = 500): Promise<Omit<QueueEntry, "raw">[]> {
  return withRecipients(db, await db.selectFrom("outbox").select(LISTED).orderBy("id").limit(limit).execute());
}

/** One queued message as the list shows it; undefined when it is not queued. */
export async function findQueued(db: DB, id: number): Promise<Omit<QueueEntry, "raw"> | undefined> {
  const [entry] = await withRecipients(db, await db.selectFrom("outbox").select(LISTED).where("id", "=", id).execute());
  return entry;
}

/**
 * Records one recipient's answer as soon as it is known: delivered or failed is
 * final (a crash right after does not send to it again); a deferral keeps it
 * pending with the reply, for the list and the delay notice.
 */
export async function recordRecipientReply(db: DB, id: number, address: string, status: "pending" | "delivered" | "failed", reply: NonNullable<QueueRecipient["reply"]>, remoteMta: string | null): Promise<void> {
  await db
    .updateTable("outbox_recipients")
    .set({ reply_code: reply.code, reply_enhanced: reply.enhanced, reply_text: reply.text, remote_mta: remoteMta, ...(status === "pending" ? {} : { status }) })
    .where("outbox_id", "=", id)
    .where("address", "=", address)
    .execute();
}

/** Messages with a submitter queued before `queuedBefore` that got no delay notice yet (all still in the queue are undelivered). */
export async function awaitingDelayNotice(db: DB, queuedBefore: number): Promise<QueueEntry[]> {
  const rows = await db.selectFrom("outbox").selectAll().where("submitter", "is not", null).where("delay_notice_at", "is", null).where("created_at", "<=", queuedBefore).orderBy("id").limit(50).execute();
  return withRecipients(db, rows);
}

/** The message is done (every recipient delivered or failed): it leaves the queue and its DSN, if any, enters it, in one transaction (sent exactly once). */
export async function outboxDone(db: DB, id: number, dsn?: QueuedMessage, now = Date.now()): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const gone = await trx.deleteFrom("outbox").where("id", "=", id).executeTakeFirst();
    // Deleted meanwhile (by an admin): nobody is told.
    if (dsn && gone.numDeletedRows > 0n) await enqueueWith(trx, dsn, now);
  });
}

export async function outboxRetry(db: DB, id: number, attempts: number, nextAttempt: number, error: string): Promise<void> {
  await db.updateTable("outbox").set({ attempts, next_attempt: nextAttempt, last_error: error }).where("id", "=", id).execute();
}

/** Marks the delay notice sent and queues it in the same transaction: one notice per message. */
export async function recordDelayNotice(db: DB, id: number, notice: QueuedMessage, now = Date.now()): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const marked = await trx.updateTable("outbox").set({ delay_notice_at: now }).where("id", "=", id).where("delay_notice_at", "is", null).executeTakeFirst();
    if (marked.numUpdatedRows > 0n) await enqueueWith(trx, notice, now);
  });
}

/** Makes a queued message due now; false when there is no such message. */
export async function retryQueuedNow(db: DB, id: number, now = Date.now()): Promise<boolean> {
  const result = await db.updateTable("outbox").set({ next_attempt: now }).where("id", "=", id).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Removes a queued message unsent; false when there is no such message. */
export async function deleteQueued(db: DB, id: number): Promise<boolean> {
  const result = await db.deleteFrom("outbox").where("id", "=", id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
