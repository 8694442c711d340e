// DKIM keys, rotated in two phases so no signature is made that DNS cannot
// verify: a new key is *pending* (its record to be published, not signing)
// until DNS serves the record or an admin activates it; it then signs and the
// key it replaces is *retired*: no longer signing but still published for a
// week, so mail signed just before the switch still verifies.
import { DEFAULT_SELECTOR, keyState, removableAfter, type SigningKey, utcMinute } from "../mail/dkim-key.ts";
import { UserError } from "../errors.ts";
import { type DB, hotStatement } from "./db.ts";
import { findDomain, parseDomainName } from "./domains.ts";
import { createDkimKey } from "./new-dkim-key.ts";
import type { DkimKey } from "./schema.ts";

async function domainId(db: DB, input: string): Promise<{ id: number; name: string }> {
  const name = parseDomainName(input);
  const domain = await findDomain(db, name);
  if (!domain) throw new UserError("not_found", `domain ${name} does not exist`, "domain");
  return domain;
}

/** All published keys of a domain (pending, signing and retired), newest first. */
export async function listDkimKeys(db: DB, input: string): Promise<DkimKey[]> {
  const domain = await domainId(db, input);
  return db.selectFrom("dkim_keys").selectAll().where("domain_id", "=", domain.id).orderBy("id", "desc").execute();
}

// Read for each forwarded message: compiled once (see hotStatement).
const selectSigningKey = hotStatement((db, v: { name: string }) =>
  db
    .selectFrom("dkim_keys")
    .innerJoin("domains", "domains.id", "dkim_keys.domain_id")
    .select(["dkim_keys.selector", "dkim_keys.private_key"])
    .where("domains.name", "=", v.name)
    .where("dkim_keys.activated_at", "is not", null)
    .where("dkim_keys.retired_at", "is", null)
    .orderBy("dkim_keys.id", "desc"),
);

/** The key that signs mail of this domain now, or null when it has none. */
export async function signingKey(db: DB, name: string): Promise<SigningKey | null> {
  const [row] = await selectSigningKey(db, { name });
  return row ? { domain: name, selector: row.selector, privateKey: row.private_key } : null;
}

/** A new pending key with a new selector: it signs once DNS serves its record (or it is activated). */
export async function rotateDkimKey(db: DB, input: string, selector?: string, now = Date.now()): Promise<DkimKey> {
  const domain = await domainId(db, input);
  const pending = await db.selectFrom("dkim_keys").select("selector").where("domain_id", "=", domain.id).where("activated_at", "is", null).executeTakeFirst();
  if (pending) throw new UserError("conflict", `${domain.name} already has a new key waiting (selector ${pending.selector}): publish its record, or activate it`, "selector");
  const date = new Date(now).toISOString().slice(0, 10).replaceAll("-", "");
  return createDkimKey(db, domain, selector ?? `${DEFAULT_SELECTOR}-${date}`, now, "pending");
}

/** Every pending key with its domain: what the periodic DNS check looks for. */
export function pendingKeys(db: DB): Promise<(DkimKey & { domain: string })[]> {
  return db.selectFrom("dkim_keys").innerJoin("domains", "domains.id", "dkim_keys.domain_id").selectAll("dkim_keys").select("domains.name as domain").where("dkim_keys.activated_at", "is", null).execute();
}

/**
 * The pending key starts signing and the signing one is retired (still
 * published), in one transaction. Null when the key is no longer pending:
 * another process (the server's periodic check, a CLI) activated it first.
 */
export async function activateKey(db: DB, key: Pick<DkimKey, "id" | "domain_id">, now = Date.now()): Promise<{ retired: string[] } | null> {
  return db.transaction().execute(async (trx) => {
    const activated = await trx.updateTable("dkim_keys").set({ activated_at: now }).where("id", "=", key.id).where("activated_at", "is", null).returning("id").executeTakeFirst();
    if (!activated) return null;
    const retired = await trx
      .updateTable("dkim_keys")
      .set({ retired_at: now })
      .where("domain_id", "=", key.domain_id)
      .where("id", "!=", key.id)
      .where("activated_at", "is not", null)
      .where("retired_at", "is", null)
      .returning("selector")
      .execute();
    return { retired: retired.map((r) => r.selector) };
  });
}

/** `dkim-rotate --activate`: switch to the pending key without waiting for DNS. */
export async function activatePendingKey(db: DB, input: string, now = Date.now()): Promise<{ selector: string; retired: string[] }> {
  const domain = await domainId(db, input);
  const pending = await db.selectFrom("dkim_keys").select(["id", "domain_id", "selector"]).where("domain_id", "=", domain.id).where("activated_at", "is", null).executeTakeFirst();
  if (!pending) throw new UserError("not_found", `${domain.name} has no pending DKIM key: rotate first`, "selector");
  const done = await activateKey(db, pending, now);
  if (!done) throw new UserError("conflict", `selector ${pending.selector} of ${domain.name} was activated meanwhile`, "selector");
  return { selector: pending.selector, ...done };
}

/**
 * Stops publishing a key. The signing key cannot be removed; a pending one
 * can (the rotation is abandoned); a retired one only a week after it was
 * retired, unless forced, because mail signed with it may still be in transit.
 */
export async function removeDkimKey(db: DB, input: string, selector: string, options: { force?: boolean; now?: number } = {}): Promise<DkimKey> {
  const domain = await domainId(db, input);
  const key = await db.selectFrom("dkim_keys").selectAll().where("domain_id", "=", domain.id).where("selector", "=", selector).executeTakeFirst();
  if (!key) throw new UserError("not_found", `no DKIM key with selector ${selector} on ${domain.name}`, "selector");
  const state = keyState(key);
  if (state === "signing") throw new UserError("conflict", `selector ${selector} is the signing key; rotate first`, "selector");
  const after = removableAfter(key);
  if (state === "retired" && after! > (options.now ?? Date.now()) && !options.force) {
    throw new UserError("conflict", `selector ${selector} was retired on ${utcMinute(key.retired_at!)}; mail signed with it may still be in transit until ${utcMinute(after!)}: remove it after that (or force)`, "selector");
  }
  await db.deleteFrom("dkim_keys").where("id", "=", key.id).execute();
  return key;
}
