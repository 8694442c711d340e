// What the listener knows about one SMTP connection, passed to every stage hook.
// The listener alone writes it; hooks and checks read it.
import type { Route } from "../routing/resolve.ts";
import type { HeaderField } from "../mail/headers.ts";
import type { MessageParts } from "../mail/message.ts";

/** A recipient accepted at RCPT TO, with the route that accepted it. */
export interface AcceptedRecipient {
  address: string;
  route: Extract<Route, { action: "deliver" | "drop" }>;
}

export interface Session {
  id: string;
  remoteIp: string;
  remotePort: number;
  /** Reverse-DNS name of the client IP, null when it has none. Never the HELO name. */
  clientHost: string | null;
  /** The reverse-DNS name when its forward lookup confirms the IP (FCrDNS), else null. */
  verifiedHost: string | null;
  /** Root domain of verifiedHost, else the IP (IPv6: its /64): what limits and lists count by. */
  senderKey: string;
  /** Exempt from greylisting, rate limits and SPF/DMARC refusal (admin allowlist or a default suffix). */
  allowlisted: boolean;
  /** The HELO/EHLO argument: recorded, never trusted. */
  helo: string | null;
  tls: { protocol: string; cipher: string } | null;
  /** Envelope sender of the current transaction; `null` before MAIL, "" for the null sender `<>`. */
  mailFrom: string | null;
  /** Accepted recipients of the current transaction, in order. */
  recipients: AcceptedRecipient[];
}

/**
 * A received message (dot-unstuffed): the header block in memory, the body in
 * memory or in a spool file (src/mail/message.ts reads either as a stream).
 */
export interface InboundMessage extends MessageParts {
  size: number;
  /** True when the message went over the size limit; `head` and the body are then empty. */
  oversized: boolean;
  headers: HeaderField[];
  /** The header block as text (for the mail log), "" when none was found. */
  headerBlock: string;
  /** SHA-256 (hex) of the body as received, taken while it arrived: what the fingerprint of a retry compares. */
  bodySha256: string;
  /** Work that goes on after the DATA answer and still reads the message (deliveries past the timeout): its spool file stays until they end. */
  outliving: Promise<unknown>[];
}
