// DKIM keys of the managed domains and the signature on forwarded copies.
import { generateKeyPair } from "node:crypto";
import { promisify } from "node:util";
import { createSeal, getARChain } from "mailauth/lib/arc";
import { dkimBody } from "mailauth/lib/dkim/body";
import { DkimSigner } from "mailauth/lib/dkim/dkim-signer";
import { type ParsedHeaders, parseHeaders } from "mailauth/lib/tools";
import { headerBlockEnd } from "../mail/headers.ts";

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

/**
 * What mailauth's signer reads from a message, taken once: the header block
 * (parsed as mailauth parses it) and the relaxed/sha256 body hash, which the
 * DKIM signature and the ARC-Message-Signature share. mailauth's own dkimSign
 * and sealMessage each stream the whole message through its parser again.
 */
interface Prepared {
  /** The header block, bare LFs made CRLF as mailauth's parser does, blank line included. */
  block: Buffer;
  headers: ParsedHeaders;
  bodyHash: string;
}

function prepare(message: Buffer): Prepared {
  const text = message.toString("latin1");
  const normalized = /(?<!\r)\n/.test(text) ? Buffer.from(text.replace(/(?<!\r)\n/g, "\r\n"), "latin1") : message;
  const end = headerBlockEnd(normalized);
  const block = end === -1 ? normalized : normalized.subarray(0, end);
  const hasher = dkimBody("relaxed", "sha256", false);
  if (end !== -1) hasher.update(normalized.subarray(end));
  return { block, headers: parseHeaders(block), bodyHash: hasher.digest("base64") };
}

async function dkimSignature(prepared: Prepared, key: SigningKey, signTime: Date): Promise<string> {
  const signature = { signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey, canonicalization: "relaxed/relaxed" };
  const signer = new DkimSigner({ headers: prepared.headers, bodyHash: prepared.bodyHash, signTime, headerList: SIGNED_HEADERS, signatureData: [signature] });
  await signer.finalize();
  if (!signer.signatureHeaders.length) throw new Error(`DKIM signing for ${key.domain} failed: ${signer.errors.map((e) => e.err?.message).join("; ")}`);
  return signer.signatureHeaders.join("\r\n") + "\r\n";
}

/** The DKIM-Signature header (with line break) for a complete message. */
export function signMessage(message: Buffer, key: SigningKey, signTime = new Date()): Promise<string> {
  return dkimSignature(prepare(message), key, signTime);
}

/** The inputs of an ARC set: our Authentication-Results and the chain validation status. */
export interface ArcSealInput {
  authResults: string;
  cv: string;
}

/**
 * A forwarded copy as it leaves: an ARC set (when it can be made: a full or
 * failed chain is not sealed again) and on top a DKIM signature that also
 * covers the ARC set.
 */
export async function sealAndSign(message: Buffer, key: SigningKey, seal: ArcSealInput, signTime = new Date()): Promise<Buffer> {
  const prepared = prepare(message);
  let chain: ReturnType<typeof getARChain> = false;
  try {
    chain = getARChain(prepared.headers);
  } catch {
    // A broken chain is sealed as mailauth's sealMessage would: without the previous sets.
  }
  const set = await createSeal(false, {
    headers: prepared.headers,
    arc: { chain } as never,
    seal: { signingDomain: key.domain, selector: key.selector, privateKey: key.privateKey, authResults: seal.authResults, cv: seal.cv as never, bodyHash: prepared.bodyHash, signTime },
  });
  const arc = Buffer.from(set.headers.length ? set.headers.join("\r\n") + "\r\n" : "", "utf8");
  const block = Buffer.concat([arc, prepared.block]);
  const signature = await dkimSignature({ block, headers: parseHeaders(block), bodyHash: prepared.bodyHash }, key, signTime);
  return Buffer.concat([Buffer.from(signature, "utf8"), arc, message]);
}
