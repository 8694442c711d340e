// What already happened to a message: targets that accepted it (so a retry
// by the sender skips them), bounces already sent, and DSNs still to send.
import { type DB, hotStatement } from "./db.ts";

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

/** Records this attempt and returns what earlier attempts achieved. */
export async function touchFingerprint(db: DB, id: string, now = Date.now()): Promise<FingerprintState> {
  const [row] = await upsertFingerprint(db, { id, now });
  const delivered = await selectDelivered(db, { fingerprint: id });
  return { firstSeen: row!.first_seen, delivered: new Set(delivered.map((d) => d.target)) };
}

/** The message can no longer come as a retry: an identical one later is a new message (delivered, bounced rows go with it). */
export async function forgetFingerprint(db: DB, id: string): Promise<void> {
  await db.deleteFrom("fingerprints").where("id", "=", id).execute();
}

export async function markDelivered(db: DB, fingerprint: string, target: string, now = Date.now()): Promise<void> {
  await insertDelivered(db, { fingerprint, target, at: now });
}

/** True the first time for (fingerprint, target, code): a bounce is sent at most once for each. */
export async function claimBounce(db: DB, fingerprint: string, target: string, code: number, now = Date.now()): Promise<boolean> {
  const row = await db.insertInto("bounced").values({ fingerprint, target, code, at: now }).onConflict((oc) => oc.doNothing()).returning("at").executeTakeFirst();
  return row !== undefined;
}

export async function enqueue(db: DB, rcptTo: string, raw: Buffer, now = Date.now()): Promise<number> {
  const row = await db.insertInto("outbox").values({ rcpt_to: rcptTo, raw, next_attempt: now, last_error: null, created_at: now }).returning("id").executeTakeFirstOrThrow();
  return row.id;
}

export function dueOutbox(db: DB, now = Date.now()) {
  return db.selectFrom("outbox").selectAll().where("next_attempt", "<=", now).orderBy("id").limit(50).execute();
}

export async function outboxDone(db: DB, id: number): Promise<void> {
  await db.deleteFrom("outbox").where("id", "=", id).execute();
}

export async function outboxRetry(db: DB, id: number, attempts: number, nextAttempt: number, error: string): Promise<void> {
  await db.updateTable("outbox").set({ attempts, next_attempt: nextAttempt, last_error: error }).where("id", "=", id).execute();
}
