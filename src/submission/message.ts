// The message a client submitted, as it goes into the outbound queue: whole,
// with our Received trace on top (RFC 6409 §4.3 leaves the rest to the client;
// "ESMTPSA": authenticated over TLS, RFC 3848).
import { rfc5322Date } from "../delivery/trace.ts";
import { type MessageParts, openMessage } from "../mail/message.ts";

export interface ReceivedBy {
  helo: string;
  ip: string;
  hostname: string;
  id: string;
  tls: boolean;
}

export async function withReceived(message: MessageParts, by: ReceivedBy, date = new Date()): Promise<Buffer> {
  const ip = by.ip.replace(/^::ffff:/, "");
  const literal = ip.includes(":") ? `IPv6:${ip}` : ip;
  const helo = by.helo.replace(/[^\x21-\x7e]/g, "?").slice(0, 255) || "unknown";
  const trace = `Received: from ${helo} ([${literal}])\r\n\tby ${by.hostname} (mailferry) with ${by.tls ? "ESMTPSA" : "ESMTPA"} id ${by.id};\r\n\t${rfc5322Date(date)}\r\n`;
  const chunks: Buffer[] = [];
  for await (const chunk of openMessage(message, Buffer.from(trace))) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
