// DKIM keys of the managed domains and the signature on forwarded copies.
import { generateKeyPair } from "node:crypto";
import { promisify } from "node:util";
import { dkimSign } from "mailauth/lib/dkim/sign";

export const DEFAULT_SELECTOR = "mailferry";

/** Headers our signature covers: the usual ones and the ARC set we add (RFC 8617 does not forbid it; big receivers do it). */
export const SIGNED_HEADERS = [
  "From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
  "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "X-Original-From",
  "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results",
].join(":");

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

export interface SigningKey {
  domain: string;
  selector: string;
  privateKey: string;
}

/** The DKIM-Signature header (with line break) for a complete message. */
export async function signMessage(message: Buffer, key: SigningKey): Promise<string> {
  const signature = { signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey, canonicalization: "relaxed/relaxed", headerList: SIGNED_HEADERS };
  const result = await dkimSign(message, { ...signature, signatureData: [signature] });
  if (!result.signatures) throw new Error(`DKIM signing for ${key.domain} failed: ${result.errors?.map((e) => e.err?.message).join("; ")}`);
  return result.signatures;
}
