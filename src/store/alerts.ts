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

/** A value the alert job keeps between checks, in the settings table. */
async function jobValue(db: DB, key: string): Promise<string | null> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", key).executeTakeFirst();
  return row?.value ?? null;
}

async function saveJobValue(db: DB, key: string, value: string, now: number): Promise<void> {
  await db.insertInto("settings").values({ key, value, updated_at: now }).onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: now })).execute();
}

const seenKey = (domain: string) => `dns_seen_right:${domain}`;

/** The zone lines of a managed domain's records that the alert job saw right (DNS drift, src/alerts/triggers.ts). */
export async function dnsSeenRight(db: DB, domain: string): Promise<string[]> {
  const value = await jobValue(db, seenKey(domain));
  return value ? (JSON.parse(value) as string[]) : [];
}

export function saveDnsSeenRight(db: DB, domain: string, lines: string[], now: number): Promise<void> {
  return saveJobValue(db, seenKey(domain), JSON.stringify(lines), now);
}

const DIGEST_KEY = "alerts_digest_since";

/** Where the next digest starts (when the last one was sent, or the digest was turned on); null before the first check. */
export async function digestSince(db: DB): Promise<number | null> {
  const value = await jobValue(db, DIGEST_KEY);
  return value === null ? null : Number(value);
}

export function saveDigestSince(db: DB, at: number): Promise<void> {
  return saveJobValue(db, DIGEST_KEY, String(at), at);
}

/** What a digest counts, over [since, until): see src/alerts/digest.ts. */
export interface DigestCounts {
  /** The SMTP answers that ended a transaction (DATA) or refused or deferred something, by reason, most first; `refused`: of them 4xx or 5xx. */
  reasons: { reason: string; count: number; refused: number }[];
  /** Envelope senders refused most (5xx), most first. */
  refusedSenders: { sender: string; count: number }[];
  /** Recipients accepted most at RCPT, most first. */
  aliases: { alias: string; count: number }[];
}

export async function digestCounts(db: DB, since: number, until: number, top: number): Promise<DigestCounts> {
  const answers = db.selectFrom("events").where("at", ">=", since).where("at", "<", until).where("stage", "!=", "delivery");
  const count = db.fn.countAll<number>().as("n");
  const [reasons, senders, aliases] = await Promise.all([
    answers.select((eb) => ["reason", count, eb.fn.sum<number>(eb.case().when("code", ">=", 400).then(1).else(0).end()).as("refused")]).where("reason", "is not", null).where((eb) => eb.or([eb("stage", "=", "data"), eb("code", ">=", 400)])).groupBy("reason").orderBy("n", "desc").orderBy("reason").execute(),
    answers.select(["mail_from", count]).where("code", ">=", 500).where("mail_from", "is not", null).where("mail_from", "!=", "").groupBy("mail_from").orderBy("n", "desc").orderBy("mail_from").limit(top).execute(),
    answers.select(["recipients", count]).where("stage", "=", "rcpt").where("code", "<", 300).where("recipients", "is not", null).groupBy("recipients").orderBy("n", "desc").orderBy("recipients").limit(top).execute(),
  ]);
  return {
    reasons: reasons.map((r) => ({ reason: r.reason!, count: Number(r.n), refused: Number(r.refused) })),
    refusedSenders: senders.map((r) => ({ sender: r.mail_from!, count: Number(r.n) })),
    aliases: aliases.map((r) => ({ alias: (JSON.parse(r.recipients!) as string[]).join(", "), count: Number(r.n) })),
  };
}

/** Messages of the server's own waiting in the outbox for a retry (sent or dropped ones are gone). */
export async function outboxWaiting(db: DB): Promise<number> {
  const row = await db.selectFrom("outbox").select((eb) => eb.fn.countAll<number>().as("n")).where("attempts", ">", 0).executeTakeFirstOrThrow();
  return Number(row.n);
}
