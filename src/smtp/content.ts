// DATA checks on the message itself, in the order of SPEC §3 (size is checked first, by the listener).
import { parseMailbox } from "../mail/address.ts";
import type { HeaderField } from "../mail/headers.ts";
import { type Reply, reply } from "../mail/reply.ts";
import addressparser from "nodemailer/lib/addressparser";

export const MAX_RECEIVED_HEADERS = 25;
export const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/** `raw` null: the GTUBE check is left to the configured scanner. */
export function contentVerdict(headers: HeaderField[], raw: Buffer | null): Reply | null {
  const from = headers.filter((h) => h.name === "from");
  if (from.length === 0) return reply(550, "5.7.1", "The message has no From header");
  if (from.length > 1) return reply(550, "5.7.1", "The message has more than one From header");
  const addresses = addressparser(from[0]!.value, { flatten: true });
  if (addresses.length === 0 || !addresses.every((a) => a.address && parseMailbox(a.address))) {
    return reply(550, "5.7.1", "The From header is not a valid address");
  }
  const received = headers.filter((h) => h.name === "received").length;
  if (received > MAX_RECEIVED_HEADERS) return reply(550, "5.4.6", `Too many Received headers (${received}): a mail loop?`);
  if (raw?.includes(GTUBE)) return reply(554, "5.7.1", "Message content rejected (GTUBE test string)");
  return null;
}
