// DATA checks on the message itself (the size is checked before them, see smtp/hooks.ts).
import { parseMailbox } from "../mail/address.ts";
import type { HeaderField } from "../mail/headers.ts";
import { type Decision, decision } from "../mail/decision.ts";
import { reply } from "../mail/reply.ts";
import addressparser from "nodemailer/lib/addressparser";

export const MAX_RECEIVED_HEADERS = 25;
export const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/** `hasGtube`: the message contains the GTUBE string (false when the check is left to the configured scanner). */
export function contentDecision(headers: HeaderField[], hasGtube: boolean): Decision | null {
  const from = headers.filter((h) => h.name === "from");
  if (from.length === 0) return decision(reply(550, "5.7.1", "The message has no From header"), "bad_from");
  if (from.length > 1) return decision(reply(550, "5.7.1", "The message has more than one From header"), "bad_from");
  const addresses = addressparser(from[0]!.value, { flatten: true });
  if (addresses.length === 0 || !addresses.every((a) => a.address && parseMailbox(a.address))) {
    return decision(reply(550, "5.7.1", "The From header is not a valid address"), "bad_from");
  }
  const received = headers.filter((h) => h.name === "received").length;
  if (received > MAX_RECEIVED_HEADERS) return decision(reply(550, "5.4.6", `Too many Received headers (${received}): a mail loop?`), "mail_loop");
  if (hasGtube) return decision(reply(554, "5.7.1", "Message content rejected (GTUBE test string)"), "gtube");
  return null;
}
