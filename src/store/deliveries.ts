// What already happened to a message: targets that accepted it (so a retry
// by the sender skips them), bounces already sent, and DSNs still to send.
import type { DB } from "./db.ts";

export interface FingerprintState {
  firstSeen: number;
  delivered: Set<string>;
}

/** Records this attempt and returns what earlier attempts achieved. */
export async function touchFingerprint(db: DB, id: string, now = Date.now()): Promise<FingerprintState> {
  const row = await db
    .insertInto("fingerprints")
    .values({ id, first_seen: now, last_seen: now })
    .onConflict((oc) => oc.column("id").doUpdateSet({ last_seen: now }))
    .returning(["first_seen"])
    .executeTakeFirstOrThrow();
  const delivered = await db.selectFrom("delivered").select("target").where("fingerprint", "=", id).execute();
  return { firstSeen: row.first_seen, delivered: new Set(delivered.map((d) => d.target)) };
}

export async function markDelivered(db: DB, fingerprint: string, target: string, now = Date.now()): Promise<void> {
  await db.insertInto("delivered").values({ fingerprint, target, at: now }).onConflict((oc) => oc.doNothing()).execute();
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
