// Greylist (and its auto-allowlist of senders), denylist and counters: the
// state of abuse protection, all in SQLite so it survives a restart.
import { UserError } from "../errors.ts";
import { MAX_NOTE, parseSenderEntry } from "./allowlist.ts";
import type { DB } from "./db.ts";
import type { CounterTable, DenyKind, GreylistSenderTable, GreylistTable } from "./schema.ts";

export function greylistEntry(db: DB, key: string): Promise<GreylistTable | undefined> {
  return db.selectFrom("greylist").selectAll().where("key", "=", key).executeTakeFirst();
}

export async function saveGreylist(db: DB, entry: GreylistTable): Promise<void> {
  await db
    .insertInto("greylist")
    .values(entry)
    .onConflict((oc) => oc.column("key").doUpdateSet({ first_seen: entry.first_seen, passed_at: entry.passed_at, last_seen: entry.last_seen }))
    .execute();
}

export function greylistSender(db: DB, senderKey: string): Promise<GreylistSenderTable | undefined> {
  return db.selectFrom("greylist_senders").selectAll().where("sender_key", "=", senderKey).executeTakeFirst();
}

export async function saveGreylistSender(db: DB, entry: GreylistSenderTable): Promise<void> {
  await db
    .insertInto("greylist_senders")
    .values(entry)
    .onConflict((oc) => oc.column("sender_key").doUpdateSet({ last_seen: entry.last_seen }))
    .execute();
}

/** The most recently seen greylist entries, newest first. */
export function recentGreylist(db: DB, limit: number): Promise<GreylistTable[]> {
  return db.selectFrom("greylist").selectAll().orderBy("last_seen", "desc").limit(limit).execute();
}

/**
 * Forgets a greylist entry (`<sender key>|<domain>`) and its sender's place on
 * the auto-allowlist, so that sender is greylisted again everywhere.
 */
export async function forgetGreylist(db: DB, key: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom("greylist").where("key", "=", key).execute();
    await trx.deleteFrom("greylist_senders").where("sender_key", "=", key.slice(0, key.lastIndexOf("|"))).execute();
  });
}

export interface DenyEntry {
  kind: DenyKind;
  value: string;
  reason: string;
  source: "admin" | "auto";
  expires_at: number | null;
}

/** Denylist entries use the allowlist's forms (IP, CIDR, domain, address). */
export async function addDeny(db: DB, input: string, options: { reason?: string; expiresAt?: number | null; source?: "admin" | "auto" } = {}, now = Date.now()): Promise<DenyEntry & { created_at: number }> {
  const { kind, value } = parseSenderEntry(input);
  if ((options.reason ?? "").length > MAX_NOTE) throw new UserError("invalid", `the reason is longer than ${MAX_NOTE} characters`, "reason");
  const entry: DenyEntry = { kind, value, reason: options.reason ?? "", source: options.source ?? "admin", expires_at: options.expiresAt ?? null };
  const row = await db
    .insertInto("denylist")
    .values({ ...entry, created_at: now })
    .onConflict((oc) => oc.columns(["kind", "value"]).doUpdateSet({ reason: entry.reason, expires_at: entry.expires_at, source: entry.source }))
    .returning("id")
    .executeTakeFirst();
  if (!row) throw new UserError("conflict", `${value} is already denylisted`, "value");
  return { ...entry, created_at: now };
}

export async function removeDeny(db: DB, input: string): Promise<void> {
  const { kind, value } = parseSenderEntry(input);
  const result = await db.deleteFrom("denylist").where("kind", "=", kind).where("value", "=", value).executeTakeFirst();
  if (result.numDeletedRows === 0n) throw new UserError("not_found", `${value} is not on the denylist`, "value");
}

/** Entries in force (not expired). */
export function activeDenylist(db: DB, now = Date.now()) {
  return db
    .selectFrom("denylist")
    .selectAll()
    .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
    .orderBy("kind")
    .orderBy("value")
    .execute();
}

/** Adds one to a counter whose window (from its first count) lasts `windowMs`; returns the new count. */
export async function bumpCounter(db: DB, table: "abuse_counts" | "rate_counts", key: string, windowMs: number, now = Date.now(), by = 1): Promise<number> {
  const row = await db
    .insertInto(table)
    .values({ key, window_start: now, count: by })
    .onConflict((oc) =>
      oc.column("key").doUpdateSet((eb) => ({
        count: eb.case().when(`${table}.window_start`, "<=", now - windowMs).then(by).else(eb(`${table}.count`, "+", by)).end(),
        window_start: eb.case().when(`${table}.window_start`, "<=", now - windowMs).then(now).else(eb.ref(`${table}.window_start`)).end(),
      })),
    )
    .returning("count")
    .executeTakeFirstOrThrow();
  return row.count;
}

export function countersSince(db: DB, table: "abuse_counts" | "rate_counts", since: number): Promise<CounterTable[]> {
  return db.selectFrom(table).selectAll().where("window_start", ">", since).execute();
}

export async function saveCounters(db: DB, table: "rate_counts", rows: CounterTable[]): Promise<void> {
  if (rows.length === 0) return;
  await db.transaction().execute(async (trx) => {
    for (const row of rows) {
      await trx.insertInto(table).values(row).onConflict((oc) => oc.column("key").doUpdateSet({ window_start: row.window_start, count: row.count })).execute();
    }
  });
}
