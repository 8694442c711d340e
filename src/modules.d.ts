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
