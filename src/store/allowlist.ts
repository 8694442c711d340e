// The local allowlist: senders an admin trusts (SPEC §7). An entry is an IP,
// a CIDR, a domain (matching the envelope sender's domain or the client's
// reverse-DNS name, and their subdomains) or an envelope sender address.
import { isIP, BlockList } from "node:net";
import { normalizeDomain } from "../config/values.ts";
import { UserError } from "../errors.ts";
import { parseMailbox } from "../smtp/address.ts";
import type { DB } from "./db.ts";
import type { AllowKind } from "./schema.ts";

export interface AllowEntry {
  kind: AllowKind;
  value: string;
}

/** What a user typed, as an entry; throws a UserError when it is none of the four kinds. */
export function parseAllowEntry(input: string): AllowEntry {
  const text = input.trim();
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

export async function addAllow(db: DB, input: string, note = "", now = Date.now()): Promise<AllowEntry> {
  const entry = parseAllowEntry(input);
  const row = await db.insertInto("allowlist").values({ ...entry, note, created_at: now }).onConflict((oc) => oc.doNothing()).returning("id").executeTakeFirst();
  if (!row) throw new UserError("conflict", `${entry.value} is already allowlisted`, "value");
  return entry;
}

export async function removeAllow(db: DB, input: string): Promise<void> {
  const entry = parseAllowEntry(input);
  const result = await db.deleteFrom("allowlist").where("kind", "=", entry.kind).where("value", "=", entry.value).executeTakeFirst();
  if (result.numDeletedRows === 0n) throw new UserError("not_found", `${entry.value} is not on the allowlist`, "value");
}

export function listAllow(db: DB) {
  return db.selectFrom("allowlist").selectAll().orderBy("kind").orderBy("value").execute();
}

export interface SenderIdentity {
  ip: string;
  /** Reverse-DNS name of the client, when it has one. */
  clientHost: string | null;
  /** Envelope sender ("" for the null sender). */
  mailFrom: string;
}

export async function isAllowlisted(db: DB, sender: SenderIdentity): Promise<boolean> {
  const entries = await listAllow(db);
  if (entries.length === 0) return false;
  const ip = sender.ip.toLowerCase();
  const family = isIP(ip) === 6 ? "ipv6" : "ipv4";
  const address = sender.mailFrom.toLowerCase();
  const domains = [address.slice(address.lastIndexOf("@") + 1), sender.clientHost?.toLowerCase() ?? ""].filter(Boolean);
  const under = (name: string, domain: string) => name === domain || name.endsWith(`.${domain}`);
  return entries.some((e) => {
    switch (e.kind) {
      case "ip":
        return e.value === ip;
      case "cidr": {
        const [net, bits] = e.value.split("/") as [string, string];
        if ((isIP(net) === 6) !== (family === "ipv6")) return false;
        const list = new BlockList();
        list.addSubnet(net, Number(bits), family);
        return list.check(ip, family);
      }
      case "domain":
        return domains.some((d) => under(d, e.value));
      case "address":
        return address !== "" && e.value === address;
    }
  });
}
