// Destination verification (Cloudflare Email Routing behaviour): an address
// outside the managed domains receives forwarded mail only after its owner
// confirmed a signed link mailed to it. The link carries the address and its
// expiry under an HMAC, so nothing about pending links needs storing.
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

export function buildVerificationMail({ to, link, hostname, now }: { to: string; link: string; hostname: string; now: Date }): Promise<Buffer> {
  const mail = new MailComposer({
    from: { name: "Mail forwarding at " + hostname, address: `noreply@${hostname}` },
    to,
    subject: `Confirm forwarding to ${to}`,
    text: [
      `The mail forwarder at ${hostname} was asked to forward mail to ${to}.`,
      "",
      "If you want this, open the link below and press Confirm (within 24 hours):",
      "",
      link,
      "",
      "If you did not expect this message, ignore it: nothing will be forwarded to you.",
    ].join("\n"),
    date: now,
    messageId: `<${randomUUID()}@${hostname}>`,
    headers: { "Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All" },
  });
  return mail.compile().build();
}
