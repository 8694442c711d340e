// RFC 5321 mailbox syntax (with RFC 6531 UTF-8 local parts), for envelope addresses.
import { isIP } from "node:net";
import { normalizeDomain } from "./domain.ts";

export interface Mailbox {
  /** Local part as sent (case kept; routing compares case-insensitively). */
  local: string;
  /** Lower-case ASCII domain, or the address literal such as `[192.0.2.1]`. */
  domain: string;
  /** `local@domain` with the normalised domain. */
  address: string;
  isLiteral: boolean;
}

// atext of RFC 5322 plus any non-ASCII character (SMTPUTF8).
const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\-\\u0080-\\u{10FFFF}]+";
const DOT_STRING = new RegExp(`^${ATOM}(?:\\.${ATOM})*$`, "u");
// qtextSMTP / quoted-pairSMTP of RFC 5321.
const QUOTED_STRING = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\u{10FFFF}]|\\[\x20-\x7e])*"$/u;

export function parseMailbox(input: string): Mailbox | null {
  const at = input.lastIndexOf("@");
  if (at <= 0 || at === input.length - 1) return null;
  const local = input.slice(0, at);
  const rawDomain = input.slice(at + 1);
  if (Buffer.byteLength(local) > 64 || Buffer.byteLength(input) > 254) return null;
  if (!DOT_STRING.test(local) && !QUOTED_STRING.test(local)) return null;

  const literal = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(rawDomain);
  if (literal) {
    const ip = literal[1]!;
    const v6 = /^\[IPv6:/i.test(rawDomain);
    if (isIP(ip) !== (v6 ? 6 : 4)) return null;
    const domain = `[${v6 ? "IPv6:" : ""}${ip.toLowerCase()}]`;
    return { local, domain, address: `${local}@${domain}`, isLiteral: true };
  }
  // normalizeDomain lower-cases, converts IDN to punycode and drops one trailing dot.
  const domain = normalizeDomain(rawDomain);
  if (!domain || !domain.includes(".")) return null;
  return { local, domain, address: `${local}@${domain}`, isLiteral: false };
}
