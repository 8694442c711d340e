import { normalizeDomain } from "../config/values.ts";
import { UserError } from "../errors.ts";
import type { DB } from "./db.ts";
import type { Domain } from "./schema.ts";

/** The stored form of a domain name a user typed, or a UserError saying why it is not one. */
export function parseDomainName(input: string): string {
  const name = normalizeDomain(input);
  if (!name || !name.includes(".")) throw new UserError("invalid", `"${input}" is not a valid domain name (e.g. example.com)`, "name");
  return name;
}

export function listDomains(db: DB): Promise<Domain[]> {
  return db.selectFrom("domains").selectAll().orderBy("name").execute();
}

/** The managed domain with this exact (already normalised) name, if any. */
export function findDomain(db: DB, name: string): Promise<Domain | undefined> {
  return db.selectFrom("domains").selectAll().where("name", "=", name).executeTakeFirst();
}

export async function addDomain(db: DB, input: string, now = Date.now()): Promise<Domain> {
  const name = parseDomainName(input);
  const inserted = await db
    .insertInto("domains")
    .values({ name, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column("name").doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!inserted) throw new UserError("conflict", `domain ${name} already exists`, "name");
  return inserted;
}

/** Removes the domain and, by cascade, its aliases. */
export async function removeDomain(db: DB, input: string): Promise<void> {
  const name = parseDomainName(input);
  const result = await db.deleteFrom("domains").where("name", "=", name).executeTakeFirst();
  if (result.numDeletedRows === 0n) throw new UserError("not_found", `domain ${name} does not exist`, "name");
}
