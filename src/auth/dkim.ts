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
  const prepared = prepare(message);
  return Buffer.concat([await withSignature(prepared, await arcSet(prepared, key, seal, signTime), key, signTime), message]);
}

/** What goes on top of a forwarded copy's header block, and which of the two it holds. */
export interface CopySeal {
  head: Buffer;
  /** An ARC set was added (false only when the chain cannot take another: RFC 8617 section 5.1). */
  sealed: boolean;
  dkimSigned: boolean;
}

/**
 * A header block whose body was hashed as it streamed (bodyHasher), sealed
 * with an ARC set, and with `dkim` also signed on top (docs/delivery-and-authentication.md,
 * "What mailferry signs, and why").
 */
export async function sealHead(head: Buffer, bodyHash: string, key: SigningKey, seal: ArcSealInput, dkim: boolean, signTime = new Date()): Promise<CopySeal> {
  const prepared = { ...prepareHead(head), bodyHash };
  const arc = await arcSet(prepared, key, seal, signTime);
  const top = dkim ? await withSignature(prepared, arc, key, signTime) : arc;
  return { head: Buffer.concat([top, head]), sealed: arc.length > 0, dkimSigned: dkim };
}

/** mailauth's refusals that are about the chain, not our key: it already failed, or holds 50 sets (RFC 8617 section 5.1). */
const CHAIN_REFUSALS = new Set(["EARCCHAINFAILED", "EINVALIDINSTANCE"]);

/** The ARC set (with line breaks) for a message, empty when its chain cannot take another. */
async function arcSet(prepared: Prepared, key: SigningKey, seal: ArcSealInput, signTime: Date): Promise<Buffer> {
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
  if (set.headers.length) return Buffer.from(set.headers.join("\r\n") + "\r\n", "utf8");
  const errors = (set.errors ?? []) as { err?: { code?: string; message?: string } }[];
  if (errors.every((e) => CHAIN_REFUSALS.has(e.err?.code ?? ""))) return Buffer.alloc(0);
  throw new Error(`ARC sealing for ${key.domain} failed: ${errors.map((e) => e.err?.message).join("; ")}`);
}

/** The DKIM-Signature over the message with the ARC set on top, followed by that set. */
async function withSignature(prepared: Prepared, arc: Buffer, key: SigningKey, signTime: Date): Promise<Buffer> {
  const block = Buffer.concat([arc, prepared.block]);
  const signature = await dkimSignature({ block, headers: parseHeaders(block), bodyHash: prepared.bodyHash }, key, signTime);
  return Buffer.concat([Buffer.from(signature, "utf8"), arc]);
}
