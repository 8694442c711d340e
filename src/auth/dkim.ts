// The DKIM signature and ARC seal on forwarded copies and on mail mailferry
// writes (RFC 6376, RFC 8617). Keys and their records: src/mail/dkim-key.ts.
import { createSeal, getARChain } from "mailauth/lib/arc";
import { dkimBody } from "mailauth/lib/dkim/body";
import { DkimSigner } from "mailauth/lib/dkim/dkim-signer";
import { type ParsedHeaders, parseHeaders } from "mailauth/lib/tools";
import { headerBlockEnd } from "../mail/headers.ts";
import { crlfNormalizer } from "../mail/message.ts";
import type { SigningKey } from "../mail/dkim-key.ts";

/** Headers our signature covers: the usual ones and the ARC set we add (RFC 8617 does not forbid it; big receivers do it). */
export const SIGNED_HEADERS = [
  "From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
  "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "X-Original-From",
  "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results",
].join(":");

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
  const normalized = toCrlf(message);
  const end = headerBlockEnd(normalized);
  const hash = bodyHasher();
  if (end !== -1) hash.update(normalized.subarray(end));
  return { ...prepareHead(end === -1 ? normalized : normalized.subarray(0, end)), bodyHash: hash.digest() };
}

function prepareHead(head: Buffer): Omit<Prepared, "bodyHash"> {
  const block = toCrlf(head);
  return { block, headers: parseHeaders(block) };
}

const toCrlf = (bytes: Buffer): Buffer => crlfNormalizer()(bytes);

/**
 * The relaxed/sha256 body hash, fed chunk by chunk as the body streams by
 * (bare LFs read as CRLF, as mailauth's parser reads them), so a large
 * message is hashed without being held.
 */
export function bodyHasher(): { update(chunk: Buffer): void; digest(): string } {
  const hasher = dkimBody("relaxed", "sha256", false);
  const normalize = crlfNormalizer();
  return { update: (chunk) => hasher.update(normalize(chunk)), digest: () => hasher.digest("base64") };
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
  return Buffer.concat([await sealingHeaders(prepare(message), key, seal, signTime), message]);
}

/** sealAndSign for a header block whose body was hashed as it streamed (bodyHasher): the new header block. */
export async function sealAndSignHead(head: Buffer, bodyHash: string, key: SigningKey, seal: ArcSealInput, signTime = new Date()): Promise<Buffer> {
  return Buffer.concat([await sealingHeaders({ ...prepareHead(head), bodyHash }, key, seal, signTime), head]);
}

/** The DKIM-Signature and ARC set to put on top of the message. */
async function sealingHeaders(prepared: Prepared, key: SigningKey, seal: ArcSealInput, signTime: Date): Promise<Buffer> {
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
  return Buffer.concat([Buffer.from(signature, "utf8"), arc]);
}
