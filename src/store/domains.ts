import { normalizeDomain } from "../mail/domain.ts";
import { UserError } from "../errors.ts";
import type { DB } from "./db.ts";
import { randomBytes } from "node:crypto";
import { DEFAULT_SELECTOR } from "../mail/dkim-key.ts";
import type { DomainSettings } from "../aliases/rules.ts";
import { createDkimKey } from "./new-dkim-key.ts";
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

/** The name of the domain added first, if any. */
export async function firstDomainName(db: DB): Promise<string | null> {
  return (await db.selectFrom("domains").select("name").orderBy("id").limit(1).executeTakeFirst())?.name ?? null;
}

/** Every domain row, unordered (the routing configuration is built from them). */
export function allDomainRows(db: DB): Promise<Domain[]> {
  return db.selectFrom("domains").selectAll().execute();
}

/** The managed domain with this exact (already normalised) name, if any. */
export function findDomain(db: DB, name: string): Promise<Domain | undefined> {
  return db.selectFrom("domains").selectAll().where("name", "=", name).executeTakeFirst();
}

/** Adds a domain with its first DKIM key (selector `mailferry` unless given). */
export async function addDomain(db: DB, input: string, options: { selector?: string; now?: number } = {}): Promise<Domain> {
  const name = parseDomainName(input);
  const now = options.now ?? Date.now();
  const inserted = await db
    .insertInto("domains")
    .values({ name, webhook_key: newWebhookKey(), created_at: now, updated_at: now })
    .onConflict((oc) => oc.column("name").doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!inserted) throw new UserError("conflict", `domain ${name} already exists`, "name");
  try {
    await createDkimKey(db, inserted, options.selector ?? DEFAULT_SELECTOR, now);
  } catch (err) {
    await db.deleteFrom("domains").where("id", "=", inserted.id).execute();
    throw err;
  }
  return inserted;
}

/** Removes the domain and, by cascade, its aliases. */
export async function removeDomain(db: DB, input: string): Promise<void> {
  const name = parseDomainName(input);
  const result = await db.deleteFrom("domains").where("name", "=", name).executeTakeFirst();
  if (result.numDeletedRows === 0n) throw new UserError("not_found", `domain ${name} does not exist`, "name");
}

export function newWebhookKey(): string {
  return randomBytes(32).toString("hex");
}

/** The domain's webhook signing key; `rotate` replaces it first. */
export async function webhookKey(db: DB, input: string, rotate = false): Promise<string> {
  const name = parseDomainName(input);
  if (rotate) await db.updateTable("domains").set({ webhook_key: newWebhookKey(), updated_at: Date.now() }).where("name", "=", name).execute();
  const row = await db.selectFrom("domains").select("webhook_key").where("name", "=", name).executeTakeFirst();
  if (!row) throw new UserError("not_found", `domain ${name} does not exist`, "name");
  return row.webhook_key;
}

/** Whether any of these managed domains wants its mail checked by the spam scanner. */
export async function anyDomainScans(db: DB, names: string[]): Promise<boolean> {
  if (names.length === 0) return false;
  const row = await db.selectFrom("domains").select("id").where("name", "in", names).where("scan_spam", "=", 1).executeTakeFirst();
  return row !== undefined;
}

export function domainSettings(row: Domain): DomainSettings {
  return {
    catchAll: row.catch_all === 1,
    maxTargets: row.max_targets,
    deliveryPort: row.delivery_port,
    acceptSubdomains: row.accept_subdomains === null ? null : row.accept_subdomains === 1,
    randomSubdomain: row.random_subdomain === null ? null : row.random_subdomain === 1,
    randomSubdomainLength: row.random_subdomain_length,
    scanSpam: row.scan_spam === 1,
  };
}

/** Checks each setting a user may change; throws a UserError naming the field. */
export function validateDomainSettings(changes: Partial<DomainSettings>): Partial<DomainSettings> {
  const intIn = (field: string, value: unknown, min: number, max: number) => {
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
      throw new UserError("invalid", `${field} must be a whole number from ${min} to ${max}`, field);
    }
  };
  const bool = (field: string, value: unknown) => {
    if (typeof value !== "boolean") throw new UserError("invalid", `${field} must be true or false`, field);
  };
  const boolOrDefault = (field: string, value: unknown) => {
    if (typeof value !== "boolean" && value !== null) throw new UserError("invalid", `${field} must be true, false or default`, field);
  };
  if ("catchAll" in changes) bool("catch_all", changes.catchAll);
  if ("acceptSubdomains" in changes) boolOrDefault("accept_subdomains", changes.acceptSubdomains);
  if ("randomSubdomain" in changes) boolOrDefault("random_subdomain", changes.randomSubdomain);
  if ("scanSpam" in changes) bool("scan_spam", changes.scanSpam);
  if ("maxTargets" in changes) intIn("max_targets", changes.maxTargets, 1, 1000);
  if ("randomSubdomainLength" in changes) intIn("random_subdomain_length", changes.randomSubdomainLength, 1, 63);
  if ("deliveryPort" in changes && changes.deliveryPort !== null) intIn("delivery_port", changes.deliveryPort, 1, 65535);
  return changes;
}

export async function updateDomainSettings(db: DB, input: string, changes: Partial<DomainSettings>, now = Date.now()): Promise<Domain> {
  const name = parseDomainName(input);
  const valid = validateDomainSettings(changes);
  const row = await db
    .updateTable("domains")
    .set({
      ...("catchAll" in valid ? { catch_all: valid.catchAll ? 1 : 0 } : {}),
      ...("maxTargets" in valid ? { max_targets: valid.maxTargets! } : {}),
      ...("deliveryPort" in valid ? { delivery_port: valid.deliveryPort ?? null } : {}),
      ...("acceptSubdomains" in valid ? { accept_subdomains: triState(valid.acceptSubdomains!) } : {}),
      ...("randomSubdomain" in valid ? { random_subdomain: triState(valid.randomSubdomain!) } : {}),
      ...("randomSubdomainLength" in valid ? { random_subdomain_length: valid.randomSubdomainLength! } : {}),
      ...("scanSpam" in valid ? { scan_spam: valid.scanSpam ? 1 : 0 } : {}),
      updated_at: now,
    })
    .where("name", "=", name)
    .returningAll()
    .executeTakeFirst();
  if (!row) throw new UserError("not_found", `domain ${name} does not exist`, "name");
  return row;
}

const triState = (value: boolean | null) => (value === null ? null : value ? 1 : 0);
