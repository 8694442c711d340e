// Destination verification (Cloudflare Email Routing behaviour): an address
// outside the managed domains that must confirm (docs/aliases.md,
// "Destinations") receives forwarded mail only after its owner answered a
// verification mail. Three ways work, so that a server without a public URL
// can still be confirmed on its first day: replying to the mail (the reply
// reaches mailferry's own MX at the SRS domain), a code typed into the admin
// UI, or the link when the admin port is reachable. All three carry an HMAC
// of the address, so nothing about pending confirmations needs storing.
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import MailComposer from "nodemailer/lib/mail-composer";

export const VERIFY_VALIDITY_MS = 24 * 3_600_000;

function signature(payload: string, key: string): Buffer {
  return createHmac("sha256", key).update(`mailferry-verify:${payload}`).digest();
}

export function signVerification(address: string, expiresAt: number, key: string): string {
  const payload = `${Buffer.from(address).toString("base64url")}.${expiresAt.toString(36)}`;
  return `${payload}.${signature(payload, key).toString("base64url")}`;
}

export type VerificationCheck = { ok: true; address: string } | { ok: false; reason: "invalid" | "expired"; address?: string };

/** The address a link confirms, if its signature holds and it has not expired. */
export function checkVerification(token: string, key: string, now = Date.now()): VerificationCheck {
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, reason: "invalid" };
  const [encodedAddress, expiry, given] = parts as [string, string, string];
  const expected = signature(`${encodedAddress}.${expiry}`, key);
  const givenBytes = Buffer.from(given, "base64url");
  if (givenBytes.length !== expected.length || !timingSafeEqual(givenBytes, expected)) return { ok: false, reason: "invalid" };
  const address = Buffer.from(encodedAddress, "base64url").toString("utf8");
  if (parseInt(expiry, 36) < now) return { ok: false, reason: "expired", address };
  return { ok: true, address };
}

export function verificationLink(publicUrl: string, token: string): string {
  return `${publicUrl.replace(/\/?$/, "/")}verify/${token}`;
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";
/** 16 base32 characters: 80 bits, short enough to type and to fit a local part (RFC 5321 §4.5.3.1.1: 64 octets). */
const CODE_LENGTH = 16;

/**
 * The confirmation code of one verification mail: an HMAC of the destination
 * and the time the mail was sent, so a new mail replaces the old code.
 */
export function confirmationCode(address: string, sentAt: number, key: string): string {
  const mac = signature(`code:${address}:${sentAt}`, key);
  let code = "";
  for (let i = 0; i < CODE_LENGTH; i++) code += BASE32[mac[i]! & 31];
  return code;
}

/** A code as people write it: case, spaces and dashes do not matter. */
export function normalizeCode(input: string): string {
  return input.toLowerCase().replace(/[\s-]/g, "");
}

/** How the code is shown: four groups of four. */
export function displayCode(code: string): string {
  return code.toUpperCase().match(/.{1,4}/g)!.join("-");
}

export function sameCode(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

const REPLY_LOCAL = /^confirm-(\d+)-([a-z2-7]{16})$/i;

/** The Reply-To of a verification mail: a reply to it confirms. */
export function replyAddress(destinationId: number, code: string, srsDomain: string): string {
  return `confirm-${destinationId}-${code}@${srsDomain}`;
}

/** The destination id and code a reply address carries, or null when it is not one. */
export function parseReplyAddress(address: string, srsDomain: string): { id: number; code: string } | null {
  const at = address.lastIndexOf("@");
  if (at < 0 || address.slice(at + 1).toLowerCase() !== srsDomain.toLowerCase()) return null;
  const m = REPLY_LOCAL.exec(address.slice(0, at));
  return m ? { id: Number(m[1]), code: m[2]!.toLowerCase() } : null;
}

export interface VerificationMail {
  to: string;
  hostname: string;
  /** Replying to this address confirms. */
  replyTo: string;
  code: string;
  /** The link, when the admin port is reachable from outside; null otherwise. */
  link: string | null;
  now: Date;
}

export function buildVerificationMail({ to, hostname, replyTo, code, link, now }: VerificationMail): Promise<Buffer> {
  const mail = new MailComposer({
    from: { name: "Mail forwarding at " + hostname, address: `noreply@${hostname}` },
    to,
    replyTo,
    subject: `Confirm forwarding to ${to}`,
    text: [
      `The mail forwarder at ${hostname} was asked to forward mail to ${to}.`,
      "",
      "If you want this, do one of these within 24 hours:",
      "",
      "- reply to this message (the text does not matter);",
      ...(link ? [`- open this link and press Confirm: ${link}`] : []),
      `- or give this code to the forwarder's admin: ${displayCode(code)}`,
      "",
      "If you did not expect this message, ignore it: nothing will be forwarded to you.",
    ].join("\n"),
    date: now,
    messageId: `<${randomUUID()}@${hostname}>`,
    // Sent from the null sender, so auto-responders (RFC 3834 §4: they answer
    // the envelope sender) stay silent; a person's reply goes to Reply-To.
    headers: { "Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All" },
  });
  return mail.compile().build();
}
