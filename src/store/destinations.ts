// Forwarding destinations outside the managed domains and whether each has
// confirmed; the router reads the verified ones (a trigger bumps its version).
import { UserError } from "../errors.ts";
import { parseMailbox } from "../mail/address.ts";
import type { DB } from "./db.ts";
import type { Destination } from "./schema.ts";

/** The stored (lower-case) form of a destination address, or a UserError. */
export function parseDestination(input: string): string {
  const mailbox = parseMailbox(input.trim());
  if (!mailbox || mailbox.isLiteral) throw new UserError("invalid", `"${input}" is not an email address`, "address");
  return mailbox.address.toLowerCase();
}

export function listDestinations(db: DB, { after = 0, limit = 1000 }: { after?: number; limit?: number } = {}): Promise<Destination[]> {
  return db.selectFrom("destinations").selectAll().where("id", ">", after).orderBy("id").limit(limit).execute();
}

/** The addresses that confirmed they want the mail. */
export async function confirmedDestinations(db: DB): Promise<Set<string>> {
  return new Set((await db.selectFrom("destinations").select("address").where("verified_at", "is not", null).execute()).map((d) => d.address));
}

export function findDestination(db: DB, address: string): Promise<Destination | undefined> {
  return db.selectFrom("destinations").selectAll().where("address", "=", address).executeTakeFirst();
}

/** Adds the destination unless it exists; returns it and whether it is new. */
export async function ensureDestination(db: DB, address: string, now = Date.now()): Promise<{ destination: Destination; created: boolean }> {
  const inserted = await db.insertInto("destinations").values({ address, created_at: now }).onConflict((oc) => oc.column("address").doNothing()).returningAll().executeTakeFirst();
  if (inserted) return { destination: inserted, created: true };
  return { destination: (await findDestination(db, address))!, created: false };
}

export async function noteVerificationSent(db: DB, address: string, now = Date.now()): Promise<void> {
  await db
    .updateTable("destinations")
    .set((eb) => ({ last_sent_at: now, sent_count: eb("sent_count", "+", 1) }))
    .where("address", "=", address)
    .execute();
}

/** Marks it confirmed, saying what confirmed it (once; a second confirmation keeps the first). */
export async function markVerified(db: DB, address: string, by: string, now = Date.now()): Promise<Destination> {
  await db.updateTable("destinations").set({ verified_at: now, confirmed_by: by }).where("address", "=", address).where("verified_at", "is", null).execute();
  const row = await findDestination(db, address);
  if (!row) throw new UserError("not_found", `${address} is not a destination (it may have been removed)`, "address");
  return row;
}

export async function removeDestination(db: DB, address: string): Promise<Destination> {
  const row = await db.deleteFrom("destinations").where("address", "=", address).returningAll().executeTakeFirst();
  if (!row) throw new UserError("not_found", `${address} is not a destination`, "address");
  return row;
}

export function findDestinationById(db: DB, id: number): Promise<Destination | undefined> {
  return db.selectFrom("destinations").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Destinations waiting for their owner, whose last verification mail was sent after `since`. */
export function pendingSince(db: DB, since: number): Promise<Destination[]> {
  return db.selectFrom("destinations").selectAll().where("verified_at", "is", null).where("last_sent_at", ">=", since).execute();
}
