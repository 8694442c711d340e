// One forwarded copy, as it leaves: our trace and authentication headers,
// the From rewritten only when DMARC would otherwise fail at the destination,
// then an ARC seal carrying our verdicts and, when the From is ours (or the
// setting says always), a DKIM signature of the alias domain.
import libmime from "libmime";
import addressparser from "nodemailer/lib/addressparser";
import { sealHead } from "../auth/dkim.ts";
import type { ForwardingDkim } from "../config/index.ts";
import { type SigningKey } from "../mail/dkim-key.ts";
import type { AuthResults } from "../auth/inbound.ts";
import { editHeaders, type RawField } from "../mail/headers.ts";
import { unsignedHead } from "./shared-seal.ts";

/**
 * The original sender's DMARC would fail after forwarding: SPF alignment is
 * lost to SRS, so only an aligned, valid DKIM signature would carry it.
 */
export function needsFriendlyFrom(auth: Pick<AuthResults, "dmarcPolicy" | "alignedDkim">): boolean {
  return (auth.dmarcPolicy === "reject" || auth.dmarcPolicy === "quarantine") && !auth.alignedDkim;
}

/** From becomes `"Name via alias" <alias>`; the original moves to X-Original-From (and Reply-To if there was none). */
export function friendlyFrom(raw: Buffer, bodyOffset: number, alias: string): Buffer {
  return editHeaders(raw, bodyOffset, (fields) => {
    const from = fields.find((f) => f.name === "from");
    if (!from) return fields;
    const value = unfold(from.raw.slice(from.raw.indexOf(":") + 1));
    const [original] = addressparser(value, { flatten: true });
    const name = original?.name ? libmime.decodeWords(original.name) : (original?.address ?? alias);
    const eol = from.raw.endsWith("\r\n") ? "\r\n" : "\n";
    const field = (header: string, text: string): RawField => ({ name: header.toLowerCase(), raw: `${header}: ${text}${eol}` });
    const replaced = field("From", `${displayName(`${name} via ${alias}`)} <${alias}>`);
    const extra = [field("X-Original-From", value)];
    if (!fields.some((f) => f.name === "reply-to")) extra.push(field("Reply-To", value));
    return fields.flatMap((f) => (f === from ? [replaced, ...extra] : [f]));
  });
}

function unfold(value: string): string {
  return value.replace(/\r?\n[ \t]+/g, " ").trim();
}

function displayName(name: string): string {
  if (/^[\x20-\x7e]*$/.test(name)) return `"${name.replace(/[\\"]/g, "\\$&")}"`;
  return libmime.encodeWord(name, "B");
}

export interface CopyInput {
  /** The header block as received (forged Authentication-Results already removed); the body is not needed here. */
  head: Buffer;
  /** Received, X-Original-To and X-Mailferry-Sender of this copy. */
  trace: string;
  auth: Pick<AuthResults, "headers" | "arcSeal" | "dmarcPolicy" | "alignedDkim" | "bodyHash">;
  /** The original recipient this copy is for: the alias that a friendly From names. */
  alias: string;
  /** The alias domain's DKIM key; null leaves the copy unsigned and unsealed. */
  key: SigningKey | null;
  /** forwarding.dkim_sign: when the copy gets our DKIM-Signature besides its ARC set. */
  dkimSign: ForwardingDkim;
}

/** A copy is its own header block followed by the body of the message as received. */
export interface Copy {
  head: Buffer;
  rewroteFrom: boolean;
  /** It carries our ARC set. */
  sealed: boolean;
  /** It carries our DKIM-Signature. */
  dkimSigned: boolean;
  /** The bytes at the start of `head` that are our ARC set and signature (0 when neither). */
  sealLength: number;
}

/**
 * Our own DKIM signature helps only when DMARC can align with it: when the
 * From names the alias (rewritten). An untouched From aligns with the author's
 * signature or none; ours would align with nothing, and the ARC set already
 * vouches for the copy (docs/delivery-and-authentication.md, "What mailferry signs, and why").
 */
export const signsDkim = (rewroteFrom: boolean, mode: ForwardingDkim): boolean => rewroteFrom || mode === "always";

export async function composeCopy({ head, trace, auth, alias, key, dkimSign }: CopyInput): Promise<Copy> {
  const rewroteFrom = needsFriendlyFrom(auth);
  const ownHead = rewroteFrom ? friendlyFrom(head, head.length, alias) : head;
  const unsigned = unsignedHead(trace, auth, ownHead);
  if (!key) return { head: unsigned, rewroteFrom, sealed: false, dkimSigned: false, sealLength: 0 };
  const sealed = await sealHead(unsigned, auth.bodyHash, key, auth.arcSeal, signsDkim(rewroteFrom, dkimSign));
  return { ...sealed, rewroteFrom, sealLength: sealed.head.length - unsigned.length };
}
