// A domain's new DKIM key row, apart from the rest of the key lifecycle
// (dkim-keys.ts) because adding a domain creates its first key: domains.ts
// and dkim-keys.ts both build on this, so neither imports the other back.
import { generateDkimKey } from "../mail/dkim-key.ts";
import { UserError } from "../errors.ts";
import type { DB } from "./db.ts";
import type { DkimKey } from "./schema.ts";

/** A new key for the domain: signing at once (a new domain's first key, nothing to verify yet) or pending (a rotation). */
export async function createDkimKey(db: DB, domain: { id: number }, selector: string, now = Date.now(), state: "signing" | "pending" = "signing"): Promise<DkimKey> {
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(selector)) {
    throw new UserError("invalid", `"${selector}" is not a valid DKIM selector`, "selector");
  }
  const key = await generateDkimKey();
  return db.transaction().execute(async (trx) => {
    const clash = await trx.selectFrom("dkim_keys").select("id").where("domain_id", "=", domain.id).where("selector", "=", selector).executeTakeFirst();
    if (clash) throw new UserError("conflict", `selector ${selector} already exists for this domain`, "selector");
    return trx
      .insertInto("dkim_keys")
      .values({
        domain_id: domain.id,
        selector,
        algorithm: key.algorithm,
        private_key: key.privateKey,
        public_key: key.publicKey,
        created_at: now,
        activated_at: state === "signing" ? now : null,
        retired_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
}
