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
// (test/auth/signing.test.ts checks the result byte for byte against dkimSign and sealMessage).
declare module "mailauth/lib/tools" {
  export interface ParsedHeaders {
    parsed: { key: string | null; casedKey?: string; line: Buffer }[];
    original: Buffer;
  }
  export function parseHeaders(block: Buffer): ParsedHeaders;
}
declare module "mailauth/lib/dkim/body" {
  export function dkimBody(canonicalization: string, hashAlgo: string, maxBodyLength: number | false): { update(chunk: Buffer): void; digest(encoding: "base64"): string };
}
declare module "mailauth/lib/dkim/dkim-signer" {
  import type { ParsedHeaders } from "mailauth/lib/tools";
  export class DkimSigner {
    constructor(options: {
      headers: ParsedHeaders;
      bodyHash: string;
      signTime?: Date;
      canonicalization?: string;
      headerList?: string;
      signatureData: { signingDomain: string; selector: string; privateKey: string; canonicalization?: string }[];
    });
    finalize(): Promise<void>;
    signatureHeaders: string[];
    errors: { err?: Error }[];
  }
}
