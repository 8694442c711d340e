// Domain names as mail uses them: one normal form for comparing and storing.
import { domainToASCII } from "node:url";

/**
 * Lower-cased ASCII (punycode) form of a domain name without trailing dot, or
 * null when it is not a syntactically valid host name.
 */
export function normalizeDomain(input: string): string | null {
  const trimmed = input.trim().replace(/\.$/, "");
  if (trimmed === "" || trimmed.length > 253) return null;
  const ascii = domainToASCII(trimmed.toLowerCase());
  if (!ascii || ascii.length > 253) return null;
  const labels = ascii.split(".");
  if (!labels.every((l) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l))) return null;
  return ascii;
}
