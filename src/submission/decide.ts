// What an authenticated client may send through the submission port
// (docs/send-as.md): pure decisions over the credential, the envelope and the
// message's headers. The listener (listener.ts) gathers the facts and carries
// the answers out.
import addressparser from "nodemailer/lib/addressparser";
import { parseMailbox } from "../mail/address.ts";
import { type Decision, decision } from "../mail/decision.ts";
import type { HeaderField } from "../mail/headers.ts";
import { reply } from "../mail/reply.ts";
import { contentDecision } from "../smtp/content.ts";

/** What a credential may send as: one address, or any address of a domain (or of its subdomains). */
export interface SendAs {
  kind: "address" | "domain";
  identity: string;
}

export interface SubmissionLimits {
  messagesPerHour: number;
  recipientsPerMessage: number;
}

/** Whether `address` is one the credential may send as (domains compare case-insensitively; the local part too, as routing does). */
export function maySendAs(credential: SendAs, address: string): boolean {
  const mailbox = parseMailbox(address);
  if (!mailbox || mailbox.isLiteral) return false;
  const lower = mailbox.address.toLowerCase();
  if (credential.kind === "address") return lower === credential.identity;
  return mailbox.domain === credential.identity || mailbox.domain.endsWith(`.${credential.identity}`);
}

const notAllowed = (credential: SendAs, what: string) =>
  decision(reply(550, "5.7.1", `${what} is not an address this password may send as (${credential.kind === "address" ? credential.identity : `an address at ${credential.identity}`})`), "sender_not_allowed", {
    send_as: credential.identity,
  });

/** MAIL FROM: the envelope sender must be the credential's address (RFC 6409 §6.1 lets the submission server refuse others). */
export function submitterDecision(credential: SendAs, mailFrom: string): Decision {
  if (!maySendAs(credential, mailFrom)) return notAllowed(credential, mailFrom === "" ? "The null sender <>" : mailFrom);
  return decision(reply(250, "2.1.0", "Sender OK"), "sender_ok");
}

/** RCPT TO: anywhere, up to the per-message limit (the RFC 5321 §4.5.3.1.8 answer, so the client sends the rest in another message). */
export function submissionRecipientDecision(address: string, accepted: number, limits: SubmissionLimits): Decision {
  const mailbox = parseMailbox(address);
  if (!mailbox || mailbox.isLiteral) return decision(reply(501, "5.1.3", "Bad recipient address syntax"), "bad_syntax");
  if (accepted >= limits.recipientsPerMessage) return decision(reply(452, "4.5.3", `Too many recipients (at most ${limits.recipientsPerMessage} per message)`), "too_many_recipients");
  return decision(reply(250, "2.1.5", "Recipient OK"), "recipient_ok");
}

/** DATA, before the hourly count: the size, one valid From header, and every From address one the credential may send as. */
export function submittedMessageDecision(credential: SendAs, message: { oversized: boolean; headers: HeaderField[] }): Decision | null {
  if (message.oversized) return decision(reply(552, "5.3.4", "Message size exceeds the limit"), "oversize");
  const bad = contentDecision(message.headers, false);
  if (bad) return bad;
  const from = addressparser(message.headers.find((h) => h.name === "from")!.value, { flatten: true });
  const other = from.find((a) => !maySendAs(credential, a.address));
  return other ? notAllowed(credential, `From: ${other.address}`) : null;
}

/** DATA, once counted: `sent` is this message's number in the credential's current hour. */
export function hourlyLimitDecision(sent: number, limits: SubmissionLimits): Decision | null {
  if (sent <= limits.messagesPerHour) return null;
  return decision(reply(451, "4.7.0", `Rate limit: more than ${limits.messagesPerHour} messages in an hour with this password, please try again later`), "rate_limited", { sent });
}

export const queuedDecision = (id: number) => decision(reply(250, "2.0.0", `Message queued as ${id}`), "submitted", { queue_id: id });
