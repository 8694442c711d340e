// The local allowlist: senders an admin trusts (docs/delivery-and-authentication.md,
// "Abuse protection"). An entry is an IP, a CIDR, a domain (matching the
// envelope sender's domain or the client's reverse-DNS name, and their
// subdomains) or an envelope sender address.
import { isIP, BlockList } from "node:net";
import { normalizeDomain } from "../mail/domain.ts";
import { UserError } from "../errors.ts";
import { parseMailbox } from "../mail/address.ts";
import type { DB } from "./db.ts";
import type { AllowKind } from "./schema.ts";

export interface SenderEntry {
  kind: AllowKind;
  value: string;
}

/** What a user typed, as an allow- or denylist entry; throws a UserError when it is none of the four kinds. */
export function parseSenderEntry(input: string): SenderEntry {
  const text = input.trim();
  if (text.length > 320) throw new UserError("invalid", "that is too long for an IP address, CIDR, domain or email address", "value");
  const cidr = /^(.+)\/(\d{1,3})$/.exec(text);
  if (cidr && isIP(cidr[1]!)) {
    const bits = Number(cidr[2]);
    if (bits > (isIP(cidr[1]!) === 4 ? 32 : 128)) throw new UserError("invalid", `"${text}": prefix length too long`, "value");
    return { kind: "cidr", value: `${cidr[1]!.toLowerCase()}/${bits}` };
  }
  if (isIP(text)) return { kind: "ip", value: text.toLowerCase() };
  if (text.includes("@")) {
    const mailbox = parseMailbox(text);
    if (mailbox && !mailbox.isLiteral) return { kind: "address", value: mailbox.address.toLowerCase() };
  } else {
    const domain = normalizeDomain(text);
    if (domain && domain.includes(".")) return { kind: "domain", value: domain };
  }
  throw new UserError("invalid", `"${text}" is not an IP address, CIDR, domain or email address`, "value");
}

export const MAX_NOTE = 200;

export async function addAllow(db: DB, input: string, note = "", now = Date.now()): Promise<SenderEntry & { note: string; created_at: number }> {
  const entry = parseSenderEntry(input);
  if (note.length > MAX_NOTE) throw new UserError("invalid", `the note is longer than ${MAX_NOTE} characters`, "note");
  const row = await db.insertInto("allowlist").values({ ...entry, note, created_at: now }).onConflict((oc) => oc.doNothing()).returning("id").executeTakeFirst();
  if (!row) throw new UserError("conflict", `${entry.value} is already allowlisted`, "value");
  return { ...entry, note, created_at: now };
}

export async function removeAllow(db: DB, input: string): Promise<void> {
  const entry = parseSenderEntry(input);
  const result = await db.deleteFrom("allowlist").where("kind", "=", entry.kind).where("value", "=", entry.value).executeTakeFirst();
  if (result.numDeletedRows === 0n) throw new UserError("not_found", `${entry.value} is not on the allowlist`, "value");
}

export function listAllow(db: DB) {
  return db.selectFrom("allowlist").selectAll().orderBy("kind").orderBy("value").execute();
}

export interface SenderIdentity {
  ip: string;
  /** The client's verified (forward-confirmed) reverse-DNS name, when it has one. */
  host: string | null;
  /** Envelope sender ("" for the null sender or before MAIL FROM). */
  mailFrom: string;
}

/**
 * Whether an allow- or denylist entry covers a sender: IP and CIDR match the
 * client; a domain matches the client's name or the envelope sender's domain
 * (and their subdomains); an address matches the envelope sender.
 */
export function entryMatches(entry: SenderEntry, sender: SenderIdentity): boolean {
  const ip = sender.ip.toLowerCase();
  const address = sender.mailFrom.toLowerCase();
  const under = (name: string) => name === entry.value || name.endsWith(`.${entry.value}`);
  switch (entry.kind) {
    case "ip":
      return entry.value === ip;
    case "cidr": {
      const [net, bits] = entry.value.split("/") as [string, string];
      const family = isIP(net) === 6 ? "ipv6" : "ipv4";
      if (isIP(ip) !== isIP(net)) return false;
      const list = new BlockList();
      list.addSubnet(net, Number(bits), family);
      return list.check(ip, family);
    }
    case "domain":
      return (sender.host !== null && under(sender.host.toLowerCase())) || (address.includes("@") && under(address.slice(address.lastIndexOf("@") + 1)));
    case "address":
      return address !== "" && entry.value === address;
  }
}
