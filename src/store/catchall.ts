// The names catch-all aliases accepted and the verdicts on their messages
// (src/policy/catchall.ts decides; docs/aliases.md, "Learning catch-all").
import type { DB } from "./db.ts";
import { commitWithoutWaitingForDisk } from "./dialect.ts";
import type { CatchAllName, CatchAllState } from "./schema.ts";

/** A name of a catch-all: the recipient's domain and its local part without the +tag, both lower case. */
export interface CatchAllKey {
  domain: string;
  name: string;
}

/** The key of `local@domain`: a +tag is left out (catch-all routing matches the name without it), case folded. */
export function catchAllKeyOf(address: string): CatchAllKey {
  const at = address.lastIndexOf("@");
  const local = address.slice(0, at);
  const plus = local.indexOf("+");
  return { domain: address.slice(at + 1).toLowerCase(), name: (plus > 0 ? local.slice(0, plus) : local).toLowerCase() };
}

export function catchAllName(db: DB, key: CatchAllKey): Promise<CatchAllName | undefined> {
  return db.selectFrom("catchall_names").selectAll().where("domain", "=", key.domain).where("name", "=", key.name).executeTakeFirst();
}

/**
 * Counts one message's verdict for a name (a first message creates the row) and
 * returns the row as it is now. A count lost to a power cut only delays a
 * suggestion, so its commit does not wait for the disk (each message makes one).
 */
export async function countVerdict(db: DB, key: CatchAllKey, verdict: "spam" | "good", now: number): Promise<CatchAllName> {
  return commitWithoutWaitingForDisk(db, (trx) =>
    trx
      .insertInto("catchall_names")
      .values({ ...key, spam: verdict === "spam" ? 1 : 0, good: verdict === "good" ? 1 : 0, state: "learning", last_seen: now })
      .onConflict((oc) => oc.columns(["domain", "name"]).doUpdateSet((eb) => ({ [verdict]: eb(`catchall_names.${verdict}`, "+", 1), last_seen: now })))
      .returningAll()
      .executeTakeFirstOrThrow(),
  );
}

/** An admin's word on a name; a name never seen (refused in advance) gets a row of its own. */
export async function setCatchAllState(db: DB, key: CatchAllKey, state: CatchAllState, by: string, now: number): Promise<CatchAllName> {
  const decided = { state, decided_at: now, decided_by: by };
  return db
    .insertInto("catchall_names")
    .values({ ...key, spam: 0, good: 0, ...decided, last_seen: now })
    .onConflict((oc) => oc.columns(["domain", "name"]).doUpdateSet(decided))
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Moves a name the counts decide on from one state to the next; a state an admin set meanwhile is left as it is. */
export async function advanceCatchAllState(db: DB, key: CatchAllKey, from: CatchAllState, to: CatchAllState, by: string | null, now: number): Promise<void> {
  await db
    .updateTable("catchall_names")
    .set({ state: to, decided_at: by === null ? null : now, decided_by: by })
    .where("domain", "=", key.domain)
    .where("name", "=", key.name)
    .where("state", "=", from)
    .execute();
}

/** The names an admin should see: suggested, refused and allowed again (learning ones are many and say little). */
export function decidedCatchAllNames(db: DB): Promise<CatchAllName[]> {
  return db
    .selectFrom("catchall_names")
    .selectAll()
    .where("state", "!=", "learning")
    .orderBy((eb) => eb.case().when("state", "=", "suggested").then(0).when("state", "=", "refused").then(1).else(2).end())
    .orderBy("last_seen", "desc")
    .execute();
}
