// Sender Rewriting Scheme, byte-compatible with Mail::SRS (Guarded) and
// postsrsd: SRS0=HHHH=TT=domain=local@srs-domain, SRS1 for addresses that are
// already rewritten. HHHH is the first 4 base64 characters of an HMAC-SHA1
// (key: the secret) over the lower-cased fields; TT is the day number in base32.
import { createHmac } from "node:crypto";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const DAY = 86_400_000;
const TICKSLOTS = 1024; // two base32 characters
const HASH_LENGTH = 4;
export const SRS_MAX_AGE_DAYS = 21;

const SRS0 = /^SRS0[-+=]/i;
const SRS1 = /^SRS1[-+=]/i;

export interface Srs {
  domain: string;
  /** The envelope sender to use when forwarding mail from `sender` (null sender stays null). */
  forward(sender: string): string;
  /**
   * The address an SRS address stands for, or null when it is not one of ours,
   * its hash does not verify or (SRS0) it has expired.
   */
  reverse(address: string): string | null;
  isSrsAddress(address: string): boolean;
}

export interface SrsOptions {
  domain: string;
  /** The first signs; all verify (keeps bounces working across a key rotation). */
  secrets: string[];
  maxAgeDays?: number;
  now?: () => number;
}

export function createSrs({ domain, secrets, maxAgeDays = SRS_MAX_AGE_DAYS, now = Date.now }: SrsOptions): Srs {
  if (secrets.length === 0) throw new Error("SRS needs a secret");
  const hash = (secret: string, ...fields: string[]) => {
    const hmac = createHmac("sha1", secret);
    for (const field of fields) hmac.update(field.toLowerCase());
    return hmac.digest("base64").slice(0, HASH_LENGTH);
  };
  const verify = (given: string, ...fields: string[]) =>
    given.length === HASH_LENGTH && secrets.some((secret) => hash(secret, ...fields).toLowerCase() === given.toLowerCase());

  const timestamp = () => {
    const day = Math.floor(now() / DAY);
    return BASE32[(day >> 5) & 31]! + BASE32[day & 31]!;
  };
  const timestampValid = (tt: string) => {
    if (!/^[A-Z2-7]{2}$/i.test(tt)) return false;
    const upper = tt.toUpperCase();
    const then = BASE32.indexOf(upper[0]!) * 32 + BASE32.indexOf(upper[1]!);
    let today = Math.floor(now() / DAY) % TICKSLOTS;
    while (today < then) today += TICKSLOTS;
    return today <= then + maxAgeDays;
  };

  function compile(host: string, user: string): string {
    if (SRS1.test(user)) {
      // SRS1=HHHH=firsthop==HHHH=TT=domain=local: keep the first hop, re-sign for us.
      const [, firstHop, rest] = splitN(user.slice(5), "=", 3);
      if (firstHop !== undefined && rest !== undefined) return `SRS1=${hash(secrets[0]!, firstHop, rest)}=${firstHop}=${rest}`;
    }
    if (SRS0.test(user)) {
      // Strip "SRS0" but keep its separator: hence the double "==" after the host.
      const rest = user.slice(4);
      return `SRS1=${hash(secrets[0]!, host, rest)}=${host}=${rest}`;
    }
    const tt = timestamp();
    return `SRS0=${hash(secrets[0]!, tt, host, user)}=${tt}=${host}=${user}`;
  }

  function parse(user: string): string | null {
    if (SRS1.test(user)) {
      const [given, host, rest] = splitN(user.slice(5), "=", 3);
      if (given === undefined || !host || rest === undefined || !verify(given, host, rest)) return null;
      return `SRS0${rest}@${host}`;
    }
    if (SRS0.test(user)) {
      const [given, tt, host, local] = splitN(user.slice(5), "=", 4);
      if (given === undefined || tt === undefined || !host || !local) return null;
      if (!verify(given, tt, host, local) || !timestampValid(tt)) return null;
      return `${local}@${host}`;
    }
    return null;
  }

  const split = (address: string) => {
    const at = address.lastIndexOf("@");
    return at <= 0 ? null : { user: address.slice(0, at), host: address.slice(at + 1) };
  };

  return {
    domain,
    forward(sender) {
      const parts = split(sender);
      if (!parts) return sender; // "" (the null sender) and anything without a domain stay as they are
      if (parts.host.toLowerCase() === domain.toLowerCase()) return sender;
      return `${compile(parts.host, parts.user)}@${domain}`;
    },
    reverse(address) {
      const parts = split(address);
      if (!parts || parts.host.toLowerCase() !== domain.toLowerCase()) return null;
      return parse(parts.user);
    },
    isSrsAddress(address) {
      const parts = split(address);
      return !!parts && parts.host.toLowerCase() === domain.toLowerCase() && (SRS0.test(parts.user) || SRS1.test(parts.user));
    },
  };
}

/** Perl's split with a limit: at most `n` fields, the last one keeps the rest. */
function splitN(s: string, sep: string, n: number): (string | undefined)[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.indexOf(sep);
    if (i === -1) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}
