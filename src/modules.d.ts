// Module declarations TypeScript cannot find itself.

// Files imported `with { type: "file" }` are their path (embedded when compiled).
declare module "htmx.org/dist/htmx.min.js" {
  const path: string;
  export default path;
}
declare module "*.svg" {
  const path: string;
  export default path;
}
declare module "*.css" {
  const path: string;
  export default path;
}

// Documented in mailauth's README, not in its bundled typings.
declare module "mailauth/lib/dmarc/get-dmarc-record" {
  export default function getDmarcRecord(domain: string, resolver?: (name: string, rrtype: string) => Promise<unknown>, options?: { strict?: boolean }): Promise<Record<string, unknown> | false>;
}

// mailauth's signer parts, used to sign from a header block and body hash computed once
// and to make the RSA signature off the main thread (src/auth/dkim.ts; test/auth/signing.test.ts
// checks the result byte for byte against dkimSign and sealMessage).
declare module "mailauth/lib/tools" {
  export interface ParsedHeaders {
    parsed: { key: string | null; casedKey?: string; line: Buffer }[];
    original: Buffer;
  }
  export interface SigningHeaderLines {
    keys: string;
    headers: { key: string | null; casedKey?: string; line: Buffer }[];
  }
  export function parseHeaders(block: Buffer): ParsedHeaders;
  export const defaultARCFieldNames: string;
  export function getSigningHeaderLines(parsed: ParsedHeaders["parsed"], fieldNames: string): SigningHeaderLines;
  export function formatSignatureHeaderLine(type: "DKIM" | "ARC" | "AS", values: Record<string, unknown>, folded: boolean): string;
  export function formatRelaxedLine(line: string | Buffer | undefined, suffix?: string): Buffer;
  export function stripSignatureValue(line: Buffer): Buffer;
}
declare module "mailauth/lib/dkim/body" {
  export function dkimBody(canonicalization: string, hashAlgo: string, maxBodyLength: number | false): { update(chunk: Buffer): void; digest(encoding: "base64"): string };
}
declare module "mailauth/lib/dkim/header" {
  import type { SigningHeaderLines } from "mailauth/lib/tools";
  export function generateCanonicalizedHeader(
    type: "DKIM" | "ARC",
    signingHeaderLines: SigningHeaderLines,
    options: { signingDomain: string; selector: string; algorithm: string; canonicalization: string; bodyHash: string; instance?: number; timestamp: number },
  ): { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, unknown> };
}
