// DKIM keys: one signs per domain (the newest not retired); retired ones stay
// published until removed, so mail signed before a rotation still verifies.
import { DEFAULT_SELECTOR, generateDkimKey, type SigningKey } from "../auth/dkim.ts";
import { UserError } from "../errors.ts";
import { type DB, hotStatement } from "./db.ts";
import { findDomain, parseDomainName } from "./domains.ts";
import type { DkimKey } from "./schema.ts";

async function domainId(db: DB, input: string): Promise<{ id: number; name: string }> {
  const name = parseDomainName(input);
  const domain = await findDomain(db, name);
  if (!domain) throw new UserError("not_found", `domain ${name} does not exist`, "domain");
  return domain;
}

export async function createDkimKey(db: DB, domain: { id: number }, selector: string, now = Date.now()): Promise<DkimKey> {
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(selector)) {
    throw new UserError("invalid", `"${selector}" is not a valid DKIM selector`, "selector");
  }
  const key = await generateDkimKey();
  return db.transaction().execute(async (trx) => {
    const clash = await trx.selectFrom("dkim_keys").select("id").where("domain_id", "=", domain.id).where("selector", "=", selector).executeTakeFirst();
    if (clash) throw new UserError("conflict", `selector ${selector} already exists for this domain`, "selector");
    await trx.updateTable("dkim_keys").set({ retired: 1 }).where("domain_id", "=", domain.id).execute();
    return trx
      .insertInto("dkim_keys")
      .values({ domain_id: domain.id, selector, algorithm: key.algorithm, private_key: key.privateKey, public_key: key.publicKey, created_at: now })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
}

/** All published keys of a domain, newest first. */
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
    .where("dkim_keys.retired", "=", 0)
    .orderBy("dkim_keys.id", "desc"),
);

/** The key that signs mail of this domain, or null when it has none. */
export async function signingKey(db: DB, name: string): Promise<SigningKey | null> {
  const [row] = await selectSigningKey(db, { name });
  return row ? { domain: name, selector: row.selector, privateKey: row.private_key } : null;
}

/** A new signing key with a new selector; the old ones stay published. */
export async function rotateDkimKey(db: DB, input: string, selector?: string, now = Date.now()): Promise<DkimKey> {
  const domain = await domainId(db, input);
  const date = new Date(now).toISOString().slice(0, 10).replaceAll("-", "");
  return createDkimKey(db, domain, selector ?? `${DEFAULT_SELECTOR}-${date}`, now);
}

/** Stops publishing a retired key (the signing key cannot be removed). */
export async function removeDkimKey(db: DB, input: string, selector: string): Promise<void> {
  const domain = await domainId(db, input);
  const key = await db.selectFrom("dkim_keys").selectAll().where("domain_id", "=", domain.id).where("selector", "=", selector).executeTakeFirst();
  if (!key) throw new UserError("not_found", `no DKIM key with selector ${selector} on ${domain.name}`, "selector");
  if (!key.retired) throw new UserError("conflict", `selector ${selector} is the signing key; rotate first`, "selector");
  await db.deleteFrom("dkim_keys").where("id", "=", key.id).execute();
}
