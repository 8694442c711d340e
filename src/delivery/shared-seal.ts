// One seal for the copies of a message to several aliases of one signing key.
// Apart from compose.ts so the main thread uses it without loading mailauth
// (docs/benchmarks.md, "Where the memory goes").
import type { AuthResults } from "../auth/inbound.ts";

/** A copy's header block before our ARC set and signature go on top: its trace, our Authentication-Results, then its own headers. */
export const unsignedHead = (trace: string, auth: Pick<AuthResults, "headers">, ownHead: Buffer): Buffer => Buffer.concat([Buffer.from(trace + auth.headers, "utf8"), ownHead]);

/**
 * Another copy of the same message, for another alias of the same signing
 * key, under the seal a first copy (composeCopy) already carries: the copies differ only in
 * their trace headers (Received, X-Original-To, X-Mailferry-Sender), which
 * neither the ARC-Message-Signature nor our DKIM-Signature covers
 * (mailauth's ARC header list, SIGNED_HEADERS in src/auth/dkim.ts), so the
 * same signatures hold and the copy costs no RSA signature. Only for a kept
 * From: a rewritten one names each alias (sharesSeal).
 */
export function withSealOf<C extends { head: Buffer; sealLength: number }>(sealed: C, { head, trace, auth }: { head: Buffer; trace: string; auth: Pick<AuthResults, "headers"> }): C {
  return { ...sealed, head: Buffer.concat([sealed.head.subarray(0, sealed.sealLength), unsignedHead(trace, auth, head)]) };
}

/** Whether other copies of the message may carry this copy's seal (withSealOf). */
export const sharesSeal = (copy: { rewroteFrom: boolean }): boolean => !copy.rewroteFrom;
