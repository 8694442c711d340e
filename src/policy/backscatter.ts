// Whether mailferry may send anything automatic (a bounce, later a vacation
// reply) to a message's sender (RFC 3834 §2; docs/delivery-and-authentication.md,
// "Abuse protection"): never to the null sender, mail daemons or no-reply
// names, and never in reply to automatic or bulk mail.
import addressparser from "nodemailer/lib/addressparser";
import { headerValue, type HeaderField } from "../mail/headers.ts";

const DAEMON_NAMES = new Set([
  "abuse", "ftp", "hostmaster", "list", "list-request", "listserv", "mailer", "mailer-daemon", "majordomo",
  "mdaemon", "news", "nobody", "noc", "owner", "postmaster", "root", "security", "bounce", "bounces", "devnull",
  "mail-daemon", "maildaemon", "mailerdaemon", "www", "webmaster",
]);
const NO_REPLY_NAMES = /^(no-?reply|do-?not-?reply|donotreply|noreply|no_reply|do_not_reply|notifications?|notify|auto-?reply)$/;

/** A local part that must never receive automatic mail. */
export function isUnreplyableName(address: string): boolean {
  const at = address.lastIndexOf("@");
  const local = (at === -1 ? address : address.slice(0, at)).toLowerCase();
  const base = local.split("+")[0]!;
  return DAEMON_NAMES.has(base) || NO_REPLY_NAMES.test(base) || /[+-]noreply$/.test(local) || /^(owner|bounce|bounces)-/.test(local);
}

/** null when an automatic message may be sent to `envelopeSender`; otherwise why not. */
export function automaticReplyBlocked(envelopeSender: string, headers: HeaderField[]): string | null {
  if (envelopeSender === "") return "null sender";
  if (isUnreplyableName(envelopeSender)) return "sender is a mail daemon or no-reply name";
  const from = addressparser(headerValue(headers, "from") ?? "", { flatten: true });
  if (from.length === 0 || from.some((a) => !a.address || isUnreplyableName(a.address))) return "From is empty or a mail daemon or no-reply name";
  const autoSubmitted = headerValue(headers, "auto-submitted");
  if (autoSubmitted && autoSubmitted.trim().toLowerCase() !== "no") return `Auto-Submitted: ${autoSubmitted}`;
  const suppress = headerValue(headers, "x-auto-response-suppress") ?? "";
  if (/\b(dr|autoreply|all)\b/i.test(suppress)) return `X-Auto-Response-Suppress: ${suppress}`;
  if (headers.some((h) => h.name.startsWith("list-"))) return "mailing list (List-* header)";
  if (/^(bulk|list|junk)$/i.test((headerValue(headers, "precedence") ?? "").trim())) return "Precedence: bulk, list or junk";
  if (/^multipart\/report\b/i.test((headerValue(headers, "content-type") ?? "").trim())) return "the message is itself a report (multipart/report)";
  return null;
}
