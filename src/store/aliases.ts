// Alias queries. Validation is the routing layer's (validateAlias); this
// module stores what it returns and keeps imports all-or-nothing.
import { UserError } from "../errors.ts";
import { type AliasInput, type AliasRule, aliasLabel, effectiveSettings, NO_SUBDOMAINS, parseAliasName, parseSubdomain, type ValidationOptions, validateAlias } from "../aliases/rules.ts";
import { parseTxt, printTxt, type TxtError } from "../aliases/txt.ts";
import type { DB } from "./db.ts";
import { caseInsensitiveLike } from "./dialect.ts";
import { domainSettings, findDomain, parseDomainName } from "./domains.ts";
import type { Alias, Domain } from "./schema.ts";

export function toRule(row: Alias, domain: string): AliasRule {
  return {
    id: row.id,
    domain,
    subdomain: row.subdomain,
    matcher: row.matcher,
    pattern: row.pattern,
    global: row.regex_global === 1,
    recipients: JSON.parse(row.recipients) as string[],
    disabled: row.enabled ? null : row.disabled_mode,
    description: row.description,
  };
}

/** Where aliases live: a managed domain, or a subdomain of one (`team.example.com`). */
export interface Place {
  domain: Domain;
  /** "" for the domain itself. */
  subdomain: string;
  /** The full name, e.g. `team.example.com`. */
  name: string;
}

/** The managed domain itself, else its nearest managed ancestor with the labels in front as the subdomain. */
export async function findPlace(db: DB, input: string): Promise<Place> {
  const name = parseDomainName(input);
  const labels = name.split(".");
  for (let i = 0; i < labels.length - 1; i++) {
    const domain = await findDomain(db, labels.slice(i).join("."));
    if (domain) return { domain, subdomain: parseSubdomain(labels.slice(0, i).join("."), domain.name), name };
  }
  throw new UserError("not_found", `domain ${name} is not managed here (add it first)`, "domain");
}

/** A place to write aliases to: a subdomain only where the domain accepts subdomains (or the caller made the subdomain up itself). */
async function writablePlace(db: DB, input: string, options: ValidationOptions): Promise<Place> {
  const place = await findPlace(db, input);
  if (place.subdomain && !options.subdomainAllowed && !effectiveSettings(domainSettings(place.domain), options.addressDefaults ?? NO_SUBDOMAINS).acceptSubdomains) {
    throw new UserError("invalid", `${place.domain.name} does not accept subdomains (turn on subdomain matching for it first)`, "subdomain");
  }
  return place;
}

/** Aliases in creation order (regex precedence), of one domain or subdomain, or all. */
export async function listAliases(db: DB, domainInput?: string): Promise<AliasRule[]> {
  let q = db.selectFrom("aliases").innerJoin("domains", "domains.id", "aliases.domain_id").selectAll("aliases").select("domains.name as domain_name");
  if (domainInput !== undefined) {
    const place = await findPlace(db, domainInput);
    q = q.where("domains.id", "=", place.domain.id).where("aliases.subdomain", "=", place.subdomain);
  }
  const rows = await q.orderBy("aliases.id").execute();
  return rows.map((row) => toRule(row, row.domain_name));
}

type Validated = Omit<AliasRule, "id" | "domain" | "subdomain">;

/**
 * How an alias is written: validated as `ValidationOptions` say, and marked
 * when its outside destinations must confirm before they get mail (saved by a
 * write-scope token; docs/aliases.md, "Destinations").
 */
export type WriteOptions = ValidationOptions & { confirmTargets?: boolean };

function toRow(place: Place, alias: Validated, now: number, options: WriteOptions) {
  return {
    confirm_targets: options.confirmTargets ? 1 : 0,
    domain_id: place.domain.id,
    subdomain: place.subdomain,
    matcher: alias.matcher,
    pattern: alias.pattern,
    regex_global: alias.global ? 1 : 0,
    recipients: JSON.stringify(alias.recipients),
    enabled: alias.disabled ? 0 : 1,
    disabled_mode: alias.disabled,
    description: alias.description,
    created_at: now,
    updated_at: now,
  };
}

/** Adds an alias on a managed domain or (where it accepts subdomains) on a subdomain of one, given as `team.example.com`. */
export async function addAlias(db: DB, domainInput: string, input: AliasInput, options: WriteOptions = {}, now = Date.now()): Promise<AliasRule> {
  const place = await writablePlace(db, domainInput, options);
  const alias = await validateAlias(input, domainSettings(place.domain), options);
  const row = await db
    .insertInto("aliases")
    .values(toRow(place, alias, now, options))
    .onConflict((oc) => oc.columns(["domain_id", "subdomain", "matcher", "pattern"]).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!row) throw new UserError("conflict", `alias ${aliasLabel(alias)} already exists on ${place.name}`, "pattern");
  return toRule(row, place.domain.name);
}

/** The alias named `hello`, `*` or `/re/` on a domain or subdomain. */
export async function findAliasByName(db: DB, domainInput: string, name: string): Promise<AliasRule> {
  const place = await findPlace(db, domainInput);
  const { matcher, pattern } = parseAliasName(name);
  const row = await db
    .selectFrom("aliases")
    .selectAll()
    .where("domain_id", "=", place.domain.id)
    .where("subdomain", "=", place.subdomain)
    .where("matcher", "=", matcher)
    .where("pattern", "=", matcher === "exact" ? pattern.toLowerCase() : pattern)
    .executeTakeFirst();
  if (!row) throw new UserError("not_found", `no alias ${name} on ${place.name}`, "name");
  return toRule(row, place.domain.name);
}

export interface ImportReport {
  domain: string;
  aliases: Validated[];
  port: number | null;
  errors: TxtError[];
  /** True when the rules were written (apply requested and no errors). */
  applied: boolean;
}

/**
 * Imports TXT-syntax rules into a domain. Every line is parsed and validated
 * first; with any error nothing is written. `apply: false` is a dry run;
 * `replace` deletes the domain's existing aliases in the same transaction.
 */
export async function importAliases(db: DB, domainInput: string, text: string, options: { apply: boolean; replace?: boolean } & WriteOptions): Promise<ImportReport> {
  const place = await writablePlace(db, domainInput, options);
  const { domain } = place;
  const parsed = parseTxt(text);
  const errors = [...parsed.errors];
  const existing = options.replace ? new Set<string>() : new Set((await listAliases(db, place.name)).map((a) => `${a.matcher}:${a.pattern}`));
  const aliases: Validated[] = [];
  for (const input of parsed.aliases) {
    const where = { line: input.line, column: input.column, token: aliasLabel({ ...input, global: !!input.global }) };
    try {
      const alias = await validateAlias(input, domainSettings(domain), options);
      if (existing.has(`${alias.matcher}:${alias.pattern}`)) errors.push({ ...where, message: `alias ${aliasLabel(alias)} already exists on ${place.name} (use --replace)` });
      else aliases.push(alias);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      errors.push({ ...where, message: err.message });
    }
  }
  errors.sort((a, b) => a.line - b.line || a.column - b.column);
  if (parsed.port !== null && place.subdomain) errors.push({ line: 1, column: 1, token: "forward-email-port", message: `the delivery port is a setting of ${domain.name}: import it there` });
  const report: ImportReport = { domain: place.name, aliases, port: parsed.port, errors, applied: false };
  if (errors.length > 0 || !options.apply) return report;

  const now = Date.now();
  await db.transaction().execute(async (trx) => {
    if (options.replace) await trx.deleteFrom("aliases").where("domain_id", "=", domain.id).where("subdomain", "=", place.subdomain).execute();
    for (const alias of aliases) await trx.insertInto("aliases").values(toRow(place, alias, now, options)).execute();
    if (parsed.port !== null) await trx.updateTable("domains").set({ delivery_port: parsed.port, updated_at: now }).where("id", "=", domain.id).execute();
  });
  return { ...report, applied: true };
}

/** The rules of a domain (or of one subdomain) in TXT syntax, one value per line, in creation order. */
export async function exportAliases(db: DB, domainInput: string): Promise<string[]> {
  const place = await findPlace(db, domainInput);
  return printTxt(await listAliases(db, place.name), place.subdomain ? null : place.domain.delivery_port);
}

export function aliasById(db: DB, id: number): Promise<AliasRule | undefined> {
  return db
    .selectFrom("aliases")
    .innerJoin("domains", "domains.id", "aliases.domain_id")
    .selectAll("aliases")
    .select("domains.name as domain_name")
    .where("aliases.id", "=", id)
    .executeTakeFirst()
    .then((row) => (row ? toRule(row, row.domain_name) : undefined));
}

/** How many aliases exist, over all domains. */
export async function countAliases(db: DB): Promise<number> {
  const { n } = await db.selectFrom("aliases").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  return Number(n);
}

/** Whether any alias of the domain sits on a subdomain (its DNS then needs the wildcard records). */
export async function hasSubdomainAliases(db: DB, domainId: number): Promise<boolean> {
  return (await db.selectFrom("aliases").select("id").where("domain_id", "=", domainId).where("subdomain", "!=", "").executeTakeFirst()) !== undefined;
}

/** The aliases created with confirm_targets (their outside targets get mail only once confirmed; docs/aliases.md). */
export async function aliasIdsConfirmingTargets(db: DB): Promise<Set<number>> {
  return new Set((await db.selectFrom("aliases").select("id").where("confirm_targets", "=", 1).execute()).map((a) => a.id));
}

/** Every alias row, in creation order (the routing configuration is built from them). */
export function allAliasRows(db: DB): Promise<Alias[]> {
  return db.selectFrom("aliases").selectAll().orderBy("id").execute();
}

/** How many aliases each domain has, by domain id (domains without aliases are absent). */
export async function aliasCountsByDomain(db: DB): Promise<Map<number, number>> {
  const rows = await db.selectFrom("aliases").select(["domain_id"]).select((eb) => eb.fn.countAll<number>().as("n")).groupBy("domain_id").execute();
  return new Map(rows.map((r) => [r.domain_id, Number(r.n)]));
}

export interface AliasPage {
  aliases: AliasRule[];
  total: number;
}

function aliasQuery(db: DB, { domain, q }: { domain?: string | null; q?: string }) {
  let query = db.selectFrom("aliases").innerJoin("domains", "domains.id", "aliases.domain_id");
  if (domain) query = query.where("domains.name", "=", domain);
  if (q) {
    // % and _ in the search act as wildcards: harmless in an admin's filter.
    const like = `%${q}%`;
    const op = caseInsensitiveLike(db);
    query = query.where((eb) => eb.or([eb("aliases.pattern", op, like), eb("aliases.recipients", op, like), eb("aliases.description", op, like)]));
  }
  return query;
}

/** One page of aliases, newest last, optionally of one domain and matching a search in name, recipients or description. */
export async function searchAliases(db: DB, { domain, q, page, perPage }: { domain?: string | null; q?: string; page: number; perPage: number }): Promise<AliasPage> {
  const query = aliasQuery(db, { domain, q });
  const { n } = await query.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  const rows = await query.selectAll("aliases").select("domains.name as domain_name").orderBy("domains.name").orderBy("aliases.id").limit(perPage).offset((page - 1) * perPage).execute();
  return { aliases: rows.map((r) => toRule(r, r.domain_name)), total: Number(n) };
}

/** Aliases after the one with id `after`, in id order: pages stay stable while aliases are added or removed. */
export async function aliasesAfter(db: DB, filter: { domain?: string | null; q?: string; after: number; limit: number }): Promise<{ aliases: AliasRule[]; more: boolean }> {
  const rows = await aliasQuery(db, filter).selectAll("aliases").select("domains.name as domain_name").where("aliases.id", ">", filter.after).orderBy("aliases.id").limit(filter.limit + 1).execute();
  return { aliases: rows.slice(0, filter.limit).map((r) => toRule(r, r.domain_name)), more: rows.length > filter.limit };
}

/** Changes recipients, state and description (validated as on creation). */
export async function updateAlias(db: DB, id: number, input: Pick<AliasInput, "recipients" | "disabled" | "description">, options: WriteOptions = {}, now = Date.now()): Promise<AliasRule> {
  const current = await aliasById(db, id);
  if (!current) throw new UserError("not_found", `alias ${id} does not exist`, "id");
  const domain = (await findDomain(db, current.domain))!;
  const valid = await validateAlias({ matcher: current.matcher, pattern: current.pattern, global: current.global, ...input }, domainSettings(domain), options);
  await db
    .updateTable("aliases")
    .set({ recipients: JSON.stringify(valid.recipients), enabled: valid.disabled ? 0 : 1, disabled_mode: valid.disabled, description: valid.description, confirm_targets: options.confirmTargets ? 1 : 0, updated_at: now })
    .where("id", "=", id)
    .execute();
  return (await aliasById(db, id))!;
}

export async function removeAliasById(db: DB, id: number): Promise<AliasRule> {
  const current = await aliasById(db, id);
  if (!current) throw new UserError("not_found", `alias ${id} does not exist`, "id");
  await db.deleteFrom("aliases").where("id", "=", id).execute();
  return current;
}
