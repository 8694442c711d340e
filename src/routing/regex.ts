// User-supplied alias regexes: vetted on save with a ReDoS checker (so the
// admin learns why a pattern is refused), and matched with RE2 (linear time)
// so that even a pattern that slipped past the check cannot stall the listener.
import { RE2JS } from "re2js";

export const MAX_PATTERN_LENGTH = 256;
/** RFC 5321 §4.5.3.1.1: a local part is at most 64 octets; longer input is never matched. */
export const MAX_LOCAL_PART_OCTETS = 64;

// recheck's default backend prefers a native helper binary, which a compiled
// mailferry does not carry; its Web Worker backend is pure JS and keeps the
// analysis off the event loop. Loaded on first use: it is the heaviest module
// and only saving a regex alias needs it.
process.env.RECHECK_BACKEND ??= "worker";

/** Why a pattern cannot be used, or null when it is safe. */
export async function patternProblem(source: string): Promise<string | null> {
  if (source.length === 0) return "the pattern is empty";
  if (source.length > MAX_PATTERN_LENGTH) return `the pattern is longer than ${MAX_PATTERN_LENGTH} characters`;
  try {
    new RegExp(source, "i");
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message}`;
  }
  try {
    compilePattern(source);
  } catch (err) {
    return `not supported: ${(err as Error).message.replace(/^error parsing regexp: /, "")} (lookaround and backreferences cannot be used)`;
  }
  const { check } = await import("recheck");
  const diagnostics = await check(source, "i", { timeout: 5_000 });
  if (diagnostics.status === "vulnerable") {
    const attack = diagnostics.attack ? `, e.g. on ${diagnostics.attack.pattern}` : "";
    return `vulnerable to catastrophic backtracking (ReDoS): ${diagnostics.complexity.type} time${attack}`;
  }
  if (diagnostics.status === "unknown") return "could not be proven safe from catastrophic backtracking (ReDoS); simplify it";
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
