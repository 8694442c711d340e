// Alerts and the mail-log facts their triggers read (src/alerts/).
import type { Reason } from "../mail/decision.ts";
import type { DB } from "./db.ts";
import type { Alert } from "./schema.ts";

/** One delivery answer of a destination that refused or deferred a copy. */
export interface DeliveryFailure {
  /** The target address the copy went to. */
  target: string;
  reason: Reason;
  enhanced: string;
}

const FAILURE_REASONS: Reason[] = ["deferred_by_destination", "refused_by_destination"];

/** Copies destinations deferred or refused since `since` (by reason, never reply text). */
export async function deliveryFailuresSince(db: DB, since: number): Promise<DeliveryFailure[]> {
  const rows = await db
    .selectFrom("events")
    .select(["recipients", "reason", "enhanced"])
    .where("stage", "=", "delivery")
    .where("at", ">=", since)
    .where("reason", "in", FAILURE_REASONS)
    .execute();
  return rows.flatMap((row) => {
    const [target] = JSON.parse(row.recipients ?? "[]") as string[];
    return target ? [{ target, reason: row.reason!, enhanced: row.enhanced }] : [];
  });
}

/** The recipients of each message refused at DATA since `since` (spam, authentication, content), once per message. */
export async function refusedRecipientsSince(db: DB, since: number): Promise<string[]> {
  const rows = await db.selectFrom("events").select("recipients").where("stage", "=", "data").where("at", ">=", since).where("code", ">=", 500).execute();
  return rows.flatMap((row) => JSON.parse(row.recipients ?? "[]") as string[]);
}

/** Every alert, lasting ones first, then the most recently started. */
export function listAlerts(db: DB): Promise<Alert[]> {
  return db.selectFrom("alerts").selectAll().orderBy((eb) => eb("resolved_at", "is not", null), "asc").orderBy("started_at", "desc").execute();
}

/** Records a notice sent about an alert: a new (or restarted) alert, or a repetition. */
export async function saveAlert(db: DB, alert: Omit<Alert, "resolved_at">): Promise<void> {
  const { title, detail, started_at, last_sent_at } = alert;
  await db
    .insertInto("alerts")
    .values({ ...alert, resolved_at: null })
    .onConflict((oc) => oc.column("key").doUpdateSet({ title, detail, started_at, last_sent_at, resolved_at: null }))
    .execute();
}

export async function resolveAlert(db: DB, key: string, at: number): Promise<void> {
  await db.updateTable("alerts").set({ resolved_at: at, last_sent_at: at }).where("key", "=", key).execute();
}

const seenKey = (domain: string) => `dns_seen_right:${domain}`;

/** The zone lines of a managed domain's records that the alert job saw right (DNS drift, src/alerts/triggers.ts). */
export async function dnsSeenRight(db: DB, domain: string): Promise<string[]> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", seenKey(domain)).executeTakeFirst();
  return row ? (JSON.parse(row.value) as string[]) : [];
}

export async function saveDnsSeenRight(db: DB, domain: string, lines: string[], now: number): Promise<void> {
  const value = JSON.stringify(lines);
  await db.insertInto("settings").values({ key: seenKey(domain), value, updated_at: now }).onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: now })).execute();
}

/** Messages of the server's own waiting in the outbox for a retry (sent or dropped ones are gone). */
export async function outboxWaiting(db: DB): Promise<number> {
  const row = await db.selectFrom("outbox").select((eb) => eb.fn.countAll<number>().as("n")).where("attempts", ">", 0).executeTakeFirstOrThrow();
  return Number(row.n);
}
