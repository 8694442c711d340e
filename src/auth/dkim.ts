// The DKIM signature and ARC seal on forwarded copies and on mail mailferry
// writes (RFC 6376, RFC 8617). Keys and their records: src/mail/dkim-key.ts.
import { createPrivateKey, type KeyObject, sign } from "node:crypto";
import type { ARCChainEntry } from "mailauth";
import { createSeal, getARChain } from "mailauth/lib/arc";
import { dkimBody } from "mailauth/lib/dkim/body";
import { generateCanonicalizedHeader } from "mailauth/lib/dkim/header";
import { defaultARCFieldNames, formatRelaxedLine, formatSignatureHeaderLine, getSigningHeaderLines, type ParsedHeaders, parseHeaders, stripSignatureValue } from "mailauth/lib/tools";
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
  try {
    return (await headerSignature("DKIM", prepared, key, signTime, SIGNED_HEADERS)) + "\r\n";
  } catch (err) {
    throw new Error(`DKIM signing for ${key.domain} failed: ${(err as Error).message}`);
  }
}

/**
 * The DKIM-Signature or ARC-Message-Signature line mailauth's DkimSigner
 * makes for our keys (rsa-sha256, relaxed/relaxed; test/auth/signing.test.ts
 * compares the bytes), with mailauth's own canonicalization and formatting;
 * only the RSA signature is ours (offThreadSignature).
 */
async function headerSignature(type: "DKIM" | "ARC", prepared: Prepared, key: SigningKey, signTime: Date, fieldNames: string, instance?: number): Promise<string> {
  const lines = getSigningHeaderLines(prepared.headers.parsed, fieldNames);
  // RFC 6376 section 5.4: From must be signed; a signature without it fails everywhere.
  if (!lines.headers.some((header) => header.key === "from")) throw new Error("Can not sign a message that has no From header");
  const { canonicalizedHeader, dkimHeaderOpts } = generateCanonicalizedHeader(type, lines, {
    signingDomain: key.domain, selector: key.selector, algorithm: "rsa-sha256", canonicalization: "relaxed/relaxed",
    bodyHash: prepared.bodyHash, instance, timestamp: unixTime(signTime),
  });
  return formatSignatureHeaderLine(type, { ...dkimHeaderOpts, b: await offThreadSignature(canonicalizedHeader, key) }, true);
}

const unixTime = (at: Date): number => Math.floor(at.getTime() / 1000);

/**
 * An RSA-SHA256 signature made on the runtime's thread pool (node:crypto's
 * callback form). mailauth signs synchronously: two signatures per copy held
 * the main thread about 1.2 ms, a quarter of its time per message on a small
 * machine where authentication runs on it (docs/benchmarks.md).
 */
function offThreadSignature(data: Buffer, key: SigningKey): Promise<string> {
  const privateKey = parsedKey(key.privateKey);
  return new Promise((resolve, reject) => sign("sha256", data, privateKey, (err, signature) => (err ? reject(err) : resolve(signature.toString("base64")))));
}

/** Keys parsed once (a PEM costs a fifth of a signature to parse); a few at a time, as keys rotate. */
const parsedKeys = new Map<string, KeyObject>();
const PARSED_KEYS_KEPT = 32;

function parsedKey(pem: string): KeyObject {
  let key = parsedKeys.get(pem);
  if (!key) {
    key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== "rsa") throw new Error(`Invalid key type: "${key.asymmetricKeyType}" (expecting "rsa")`);
    if (parsedKeys.size >= PARSED_KEYS_KEPT) parsedKeys.delete(parsedKeys.keys().next().value!);
    parsedKeys.set(pem, key);
  }
  return key;
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

/** RFC 8617 section 4.2.1: a chain holds at most 50 sets. */
const MAX_ARC_SETS = 50;

/** What an ARC-Message-Signature covers: never ARC header fields or Authentication-Results (RFC 8617 section 4.1.2). */
const AMS_FIELDS = defaultARCFieldNames.split(":").filter((name) => !/^(arc-|authentication-results$)/i.test(name.trim())).join(":");

/** The ARC set (with line breaks) for a message, empty when its chain cannot take another. */
async function arcSet(prepared: Prepared, key: SigningKey, seal: ArcSealInput, signTime: Date): Promise<Buffer> {
  const chain = arcChainOf(prepared.headers);
  if (!chain || !followsSimply(chain)) return arcSetByMailauth(prepared, key, seal, signTime, chain ?? false);
  const instance = chain.length + 1;
  let ams: string;
  try {
    ams = await headerSignature("ARC", prepared, key, signTime, AMS_FIELDS, instance);
  } catch (err) {
    throw new Error(`ARC sealing for ${key.domain} failed: ${(err as Error).message}`);
  }
  const aar = `ARC-Authentication-Results: i=${instance}; ${seal.authResults}`;
  const as = await arcSeal(seal.cv === "pass" ? chain : [], [aar, ams], { instance, cv: seal.cv, key, bodyHash: prepared.bodyHash, signTime });
  return Buffer.from([as, ams, aar].join("\r\n") + "\r\n", "utf8");
}

/** The message's ARC sets (none: empty); null when the chain is broken. */
function arcChainOf(headers: ParsedHeaders): ARCChainEntry[] | null {
  try {
    return getARChain(headers) || [];
  } catch {
    return null;
  }
}

/**
 * Whether the next set simply follows the chain (under 50 sets, the newest
 * seal did not fail); the rest go to mailauth's createSeal (arcSetByMailauth).
 */
function followsSimply(chain: ARCChainEntry[]): boolean {
  const newestCv = String(chain.at(-1)?.["arc-seal"]?.parsed?.cv?.value ?? "").toLowerCase().trim();
  return chain.length < MAX_ARC_SETS && newestCv !== "fail";
}

/** The ARC-Seal (RFC 8617 section 5.1.1) as mailauth's createSeal makes it: over the earlier sets when cv=pass, then our AAR and AMS, then itself without b=. */
async function arcSeal(earlier: ARCChainEntry[], ours: string[], { instance, cv, key, bodyHash, signTime }: { instance: number; cv: string; key: SigningKey; bodyHash: string; signTime: Date }): Promise<string> {
  const earlierLines = earlier.flatMap((set) => [set["arc-authentication-results"]?.original, set["arc-message-signature"]?.original, set["arc-seal"]?.original]);
  const tags = { i: instance, a: "rsa-sha256", s: key.selector, d: key.domain, cv, bh: bodyHash, t: unixTime(signTime) };
  // b= holds a stand-in while the seal is hashed, so it folds as the signed one will.
  const unsigned = formatSignatureHeaderLine("AS", { ...tags, b: "a".repeat(73) }, true);
  const data = Buffer.concat([...[...earlierLines, ...ours].map((line) => formatRelaxedLine(line, "\r\n")), stripSignatureValue(formatRelaxedLine(unsigned))]);
  return formatSignatureHeaderLine("AS", { ...tags, b: await offThreadSignature(data, key) }, true);
}

/**
 * mailauth's createSeal for the chains that followsSimply leaves to it: failed
 * or full ones are not sealed; a broken one (`chain` false) is sealed as
 * mailauth's sealMessage would, without the previous sets.
 */
async function arcSetByMailauth(prepared: Prepared, key: SigningKey, seal: ArcSealInput, signTime: Date, chain: ARCChainEntry[] | false): Promise<Buffer> {
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
