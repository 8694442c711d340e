// User-supplied alias regexes, written in JavaScript syntax (as Forward Email
// documents them) and matched with RE2 (re2js). RE2 runs in time linear in the
// input, whatever the pattern, so no pattern can stall the listener and none
// needs a catastrophic-backtracking (ReDoS) check: every pattern RE2 accepts
// is accepted. Nothing in mailferry matches alias patterns with a backtracking
// engine.
import { RE2JS } from "re2js";

export const MAX_PATTERN_LENGTH = 256;
/** RFC 5321 §4.5.3.1.1: a local part is at most 64 octets; longer input is never matched. */
export const MAX_LOCAL_PART_OCTETS = 64;

/** Why a pattern cannot be used, or null when RE2 accepts it. */
export function patternProblem(source: string): string | null {
  if (source.length === 0) return "the pattern is empty";
  if (source.length > MAX_PATTERN_LENGTH) return `the pattern is longer than ${MAX_PATTERN_LENGTH} characters`;
  try {
    compilePattern(source);
  } catch (err) {
    const message = (err as Error).message.replace(/^error parsing regexp: /, "");
    return `not a regular expression RE2 accepts: ${message} (lookaround and backreferences are not available)`;
  }
  return null;
}

export interface CompiledPattern {
  /** Capture groups of the first match (index 0 is the whole match), or null. */
  exec(local: string): (string | null)[] | null;
}

/** Case-insensitive (the `i` flag is always on), linear-time matching. */
export function compilePattern(source: string): CompiledPattern {
  const re = RE2JS.compile(RE2JS.translateRegExp(source), RE2JS.CASE_INSENSITIVE);
  return {
    exec(local) {
      if (Buffer.byteLength(local) > MAX_LOCAL_PART_OCTETS) return null;
      const m = re.matcher(local);
      if (!m.find()) return null;
      return Array.from({ length: m.groupCount() + 1 }, (_, i) => m.group(i));
    },
  };
}
