// Delivery status notifications (RFC 3464): one message to the original
// sender listing the targets that failed permanently (or, for a delay notice,
// that are still being retried), with the original headers (never the body)
// attached.
import { randomUUID } from "node:crypto";
import type { Reply } from "../mail/reply.ts";
import { rfc5322Date } from "./trace.ts";

export interface FailedTarget {
  target: string;
  originalRecipient: string;
  reply: Reply;
  remoteMta: string | null;
}

export interface DsnInput {
  hostname: string;
  /** The original envelope sender, who receives the DSN. */
  to: string;
  arrival: Date;
  failures: FailedTarget[];
  /** The original header block. */
  headers: string;
  now?: Date;
  /** "delayed": a notice that delivery is still being tried (RFC 3464 §2.3.3), until `retryUntil`. */
  action?: "failed" | "delayed";
  retryUntil?: Date;
}

const WORDING = {
  failed: { subject: "Undelivered Mail Returned to Sender", lead: ["Your message could not be delivered to the following recipients. The reply", "of the destination server is included."] },
  delayed: { subject: "Delayed Mail (still being retried)", lead: ["Your message has not been delivered yet to the following recipients. It is", "still being retried; you need not send it again. The last reply is included."] },
};

export function buildDsn({ hostname, to, arrival, failures, headers, now = new Date(), action = "failed", retryUntil }: DsnInput): Buffer {
  const boundary = `mailferry-${randomUUID()}`;
  const human = [
    `This is the mail system at ${hostname}.`,
    "",
    ...WORDING[action].lead,
    "",
    ...failures.map((f) => `<${f.target}> (sent to <${f.originalRecipient}>): ${f.reply.code} ${f.reply.enhanced} ${f.reply.text}`),
  ];
  const perRecipient = failures.map((f) =>
    [
      `Final-Recipient: rfc822; ${f.target}`,
      `Original-Recipient: rfc822; ${f.originalRecipient}`,
      `Action: ${action}`,
      `Status: ${f.reply.enhanced}`,
      ...(f.remoteMta ? [`Remote-MTA: dns; ${f.remoteMta}`] : []),
      `Diagnostic-Code: smtp; ${f.reply.code} ${f.reply.enhanced} ${f.reply.text}`.slice(0, 990),
      ...(retryUntil ? [`Will-Retry-Until: ${rfc5322Date(retryUntil)}`] : []),
    ].join("\r\n"),
  );
  const lines = [
    `From: Mail Delivery System <MAILER-DAEMON@${hostname}>`,
    `To: <${to}>`,
    `Subject: ${WORDING[action].subject}`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${randomUUID()}@${hostname}>`,
    "Auto-Submitted: auto-replied",
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=utf-8",
    "",
    ...human,
    "",
    `--${boundary}`,
    "Content-Type: message/delivery-status",
    "",
    `Reporting-MTA: dns; ${hostname}`,
    `Arrival-Date: ${rfc5322Date(arrival)}`,
    "",
    perRecipient.join("\r\n\r\n"),
    "",
    `--${boundary}`,
    "Content-Type: text/rfc822-headers",
    "",
    headers.replace(/\r?\n$/, "").replace(/\r?\n/g, "\r\n"),
    "",
    `--${boundary}--`,
    "",
  ];
  return Buffer.from(lines.join("\r\n"), "utf8");
}
