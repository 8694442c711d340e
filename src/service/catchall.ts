// The admin's word on names of the learning catch-all (docs/aliases.md,
// "Learning catch-all"): refuse a name (550 5.1.1 at RCPT) or allow it again
// (accepted, and never suggested again), audited like every admin change.
import { UserError } from "../errors.ts";
import { parseMailbox } from "../mail/address.ts";
import { type Actor, audit } from "../store/audit.ts";
import { type CatchAllKey, catchAllKeyOf, catchAllName, decidedCatchAllNames, setCatchAllState } from "../store/catchall.ts";
import type { DB } from "../store/db.ts";
import { listDomains } from "../store/domains.ts";
import type { CatchAllName } from "../store/schema.ts";
import { isoTime } from "./json.ts";

/** The admin's two answers to a suggested (or any) name. */
export type CatchAllVerdict = "refused" | "allowed";

/** A name as the API and the UI show it. */
export function catchAllJson(row: CatchAllName) {
  const { domain, name, state, spam, good, decided_by } = row;
  return { address: `${name}@${domain}`, domain, name, state, spam, good, last_seen: isoTime(row.last_seen), decided_at: isoTime(row.decided_at), decided_by };
}

/** The name of a catch-all address on a managed domain (or a subdomain of one); a +tag is left out, as the learner counts. */
async function keyOf(db: DB, address: string): Promise<CatchAllKey> {
  const mailbox = parseMailbox(address.trim());
  if (!mailbox || mailbox.isLiteral) throw new UserError("invalid", `${address} is not an email address`, "address");
  const domain = mailbox.domain.toLowerCase();
  const managed = (await listDomains(db)).some((d) => domain === d.name || domain.endsWith(`.${d.name}`));
  if (!managed) throw new UserError("not_found", `${domain} is not a domain managed here`, "address");
  return catchAllKeyOf(mailbox.address);
}

export function catchAllService(db: DB, now: () => number) {
  return {
    /** Suggested names first, then refused, then allowed again. */
    list: () => decidedCatchAllNames(db),
    /** Refuses (550 5.1.1 at RCPT) or allows again a name; the change and the state before it go to the audit log. */
    async decide(actor: Actor, address: string, verdict: CatchAllVerdict): Promise<CatchAllName> {
      const key = await keyOf(db, address);
      const before = await catchAllName(db, key);
      const after = await setCatchAllState(db, key, verdict, actor.name, now());
      await audit(db, actor, verdict === "refused" ? "catchall.refuse" : "catchall.allow", `${key.name}@${key.domain}`, before ? catchAllJson(before) : null, catchAllJson(after));
      return after;
    },
  };
}
