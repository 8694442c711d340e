// A message's identity across the sender's retries: the same message from the
// same sending organisation gives the same fingerprint, so targets that
// already accepted it are not sent it again.
import { createHash } from "node:crypto";
import { getDomain } from "tldts";
import { headerValue } from "../mail/headers.ts";
import type { InboundMessage, Session } from "../smtp/session.ts";

const FIELDS = ["message-id", "date", "from", "to", "cc", "subject"] as const;

export function fingerprint(session: Pick<Session, "clientHost" | "remoteIp">, message: Pick<InboundMessage, "headers" | "bodySha256">): string {
  // Large senders retry from other hosts of the same domain; the root domain of the
  // client's name (or its IP when it has none) identifies the sender across them.
  const client = (session.clientHost && getDomain(session.clientHost)) || session.remoteIp;
  const hash = createHash("sha256");
  hash.update(`client:${client.toLowerCase()}\n`);
  for (const field of FIELDS) hash.update(`${field}:${headerValue(message.headers, field) ?? ""}\n`);
  hash.update(Buffer.from(message.bodySha256, "hex"));
  return hash.digest("hex");
}
