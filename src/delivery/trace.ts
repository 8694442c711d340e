// Headers a forwarding MX prepends to each copy: a standard Received trace,
// the original recipient, and the envelope it arrived with. The message's own
// bytes follow unchanged.
import type { Session } from "../smtp/session.ts";

export interface TraceInput {
  session: Session;
  hostname: string;
  /** The recipient this copy was addressed to at our MX. */
  originalRecipient: string;
  /** Our id for the transaction (session id and sequence). */
  id: string;
  date: Date;
}

export function traceHeaders({ session, hostname, originalRecipient, id, date }: TraceInput): string {
  const helo = clean(session.helo ?? "unknown");
  const ptr = session.clientHost ? clean(session.clientHost) : "unknown";
  const ipLiteral = session.remoteIp.includes(":") ? `IPv6:${session.remoteIp}` : session.remoteIp;
  const tls = session.tls ? `\r\n\t(using ${clean(session.tls.protocol)} with cipher ${clean(session.tls.cipher)})` : "";
  const received =
    `Received: from ${helo} (${ptr} [${ipLiteral}])\r\n` +
    `\tby ${hostname} (mailferry) with ${session.tls ? "ESMTPS" : "ESMTP"} id ${id}${tls}\r\n` +
    `\tfor <${clean(originalRecipient)}>; ${rfc5322Date(date)}\r\n`;
  const sender = session.mailFrom ? clean(session.mailFrom) : "";
  return `${received}X-Original-To: ${clean(originalRecipient)}\r\nX-Mailferry-Sender: rfc822; ${sender}, ${ptr}, ${session.remoteIp}\r\n`;
}

/** Values from the client go into header text: keep them printable and on one line. */
function clean(value: string): string {
  return value.replace(/[^\x21-\x7e]/g, "?").slice(0, 255);
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export function rfc5322Date(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}
