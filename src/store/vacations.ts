// Vacation responders of exact aliases, and who has already been answered.
import { convert } from "html-to-text";
import { UserError } from "../errors.ts";
import { parseAliasName } from "../aliases/rules.ts";
import { type DB, hotStatement } from "./db.ts";
import { findDomain, parseDomainName } from "./domains.ts";
import type { Vacation } from "./schema.ts";

export const MAX_SUBJECT = 100;
export const MAX_MESSAGE = 1000;
/** A sender (or its domain) gets at most one reply per alias in this time. */
export const REPLY_INTERVAL_MS = 4 * 86_400_000;

export interface VacationInput {
  subject: string;
  message: string;
  /** Inclusive UTC dates YYYY-MM-DD, or null for no bound. */
  start?: string | null;
  end?: string | null;
  enabled?: boolean;
}

function date(value: string | null | undefined, field: string): string | null {
  if (value === null || value === undefined || value === "") return null;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`)) || new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) !== value) {
    throw new UserError("invalid", `${field} must be a date like 2026-12-24`, field);
  }
  return value;
}

/** Checks the input (HTML in the message is reduced to text) and stores it for the alias. */
export async function setVacation(db: DB, domainInput: string, aliasName: string, input: VacationInput, now = Date.now()): Promise<Vacation> {
  const domain = await findDomain(db, parseDomainName(domainInput));
  if (!domain) throw new UserError("not_found", `domain ${domainInput} does not exist`, "domain");
  const { matcher, pattern } = parseAliasName(aliasName);
  if (matcher !== "exact") throw new UserError("invalid", "vacation replies are only for exact aliases, not catch-all or regex ones (their address is not known)", "alias");
  const alias = await db.selectFrom("aliases").select("id").where("domain_id", "=", domain.id).where("matcher", "=", "exact").where("pattern", "=", pattern.toLowerCase()).executeTakeFirst();
  if (!alias) throw new UserError("not_found", `no alias ${aliasName} on ${domain.name}`, "alias");
  const subject = input.subject.replace(/[\r\n]+/g, " ").trim();
  if (!subject || subject.length > MAX_SUBJECT) throw new UserError("invalid", `the subject must be 1 to ${MAX_SUBJECT} characters`, "subject");
  const message = convert(input.message, { wordwrap: false }).trim();
  if (!message || message.length > MAX_MESSAGE) throw new UserError("invalid", `the message must be 1 to ${MAX_MESSAGE} characters of text`, "message");
  const start = date(input.start, "start");
  const end = date(input.end, "end");
  if (start && end && start > end) throw new UserError("invalid", "the end date is before the start date", "end");
  const row: Vacation = { alias_id: alias.id, enabled: input.enabled === false ? 0 : 1, start_date: start, end_date: end, subject, message, updated_at: now };
  await db.insertInto("vacations").values(row).onConflict((oc) => oc.column("alias_id").doUpdateSet(row)).execute();
  return row;
}

// Looked up for each forwarded message: compiled once (see hotStatement).
const selectVacation = hotStatement((db, v: { aliasId: number }) => db.selectFrom("vacations").selectAll().where("alias_id", "=", v.aliasId));

export async function vacationOf(db: DB, aliasId: number): Promise<Vacation | undefined> {
  const [row] = await selectVacation(db, { aliasId });
  return row;
}

/** True when this sender (key) was not answered by this alias within the interval; records the reply. */
export async function claimVacationReply(db: DB, aliasId: number, sender: string, now = Date.now()): Promise<boolean> {
  const row = await db
    .insertInto("vacation_replies")
    .values({ alias_id: aliasId, sender, sent_at: now })
    .onConflict((oc) => oc.columns(["alias_id", "sender"]).doUpdateSet({ sent_at: now }).where("vacation_replies.sent_at", "<=", now - REPLY_INTERVAL_MS))
    .returning("sent_at")
    .executeTakeFirst();
  return row !== undefined;
}
