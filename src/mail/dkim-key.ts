// DKIM keys as mail vocabulary (RFC 6376 §3.6): a key pair, its DNS record,
// and where it is in a two-phase rotation (docs/delivery-and-authentication.md).
import { generateKeyPair } from "node:crypto";
import { promisify } from "node:util";

export const DEFAULT_SELECTOR = "mailferry";

export interface GeneratedKey {
  algorithm: "rsa";
  privateKey: string;
  /** base64 DER SubjectPublicKeyInfo: the p= of the DNS record. */
  publicKey: string;
}

export async function generateDkimKey(): Promise<GeneratedKey> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { algorithm: "rsa", privateKey: privateKey as unknown as string, publicKey: (publicKey as unknown as Buffer).toString("base64") };
}

export function dkimRecordValue(key: { algorithm: string; public_key: string }): string {
  return `v=DKIM1; k=${key.algorithm}; p=${key.public_key}`;
}

/** Where a key is in its rotation: pending (published, not signing yet), signing, or retired (still published, no longer signing). */
export interface KeyLifecycle {
  /** When it started signing; null while pending. */
  activated_at: number | null;
  /** When the next key replaced it. */
  retired_at: number | null;
}

export type DkimKeyState = "pending" | "signing" | "retired";

/**
 * How long a retired key stays published: a message signed just before the
 * switch may sit in queues for days (RFC 5321 §4.5.4.1 suggests 4-5 days of
 * retries) and is verified again by forwarders and on ARC checks.
 */
export const RETIRED_KEY_PUBLISHED_MS = 7 * 86_400_000;

export function keyState(key: KeyLifecycle): DkimKeyState {
  if (key.retired_at !== null) return "retired";
  return key.activated_at === null ? "pending" : "signing";
}

/** When a retired key's record can be removed from DNS; null for keys that are not retired. */
export function removableAfter(key: Pick<KeyLifecycle, "retired_at">): number | null {
  return key.retired_at === null ? null : key.retired_at + RETIRED_KEY_PUBLISHED_MS;
}

/** A UTC time to the minute, as the rotation messages print it. */
export const utcMinute = (t: number) => `${new Date(t).toISOString().slice(0, 16).replace("T", " ")} UTC`;

export interface SigningKey {
  domain: string;
  selector: string;
  privateKey: string;
}

