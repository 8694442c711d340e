// The Forward Email TXT record syntax, parsed and printed so rules round-trip:
//   forward-email=hello:a@x.com,support:b@y.com   exact aliases
//   forward-email=a@x.com,b@y.com                  bare recipients: catch-all
//   forward-email=example.net                      catch-all to a domain (keeps the local part)
//   forward-email=/^(support|info)$/:user+$1@x.com regex (i always on, /g allowed)
//   forward-email=!alias  !!alias  !!!alias[:rcpt] disabled: drop, soft (421), hard (550)
//   forward-email=/^re$/:!!!                       a disabled regex
//   forward-email-port=1337                        delivery port of the domain
// Each comma-separated element maps one name to one recipient; an alias with
// several recipients repeats its name (`hello:a@x.com,hello:b@y.com`).
import type { AliasInput, AliasRule, DisabledMode } from "./rules.ts";
import { aliasLabel } from "./rules.ts";

export interface TxtError {
  line: number;
  /** 1-based column of the offending token in its line. */
  column: number;
  token: string;
  message: string;
}

export interface ParsedTxt {
  aliases: (AliasInput & { line: number; column: number })[];
  port: number | null;
  errors: TxtError[];
}

const PREFIX = "forward-email=";
const PORT_PREFIX = "forward-email-port=";
const MODES: Record<number, DisabledMode> = { 1: "drop", 2: "soft", 3: "hard" };
const MARKS: Record<DisabledMode, string> = { drop: "!", soft: "!!", hard: "!!!" };

/** Parses TXT values, one per line (blank lines and `#` comments skipped). Never throws: problems are in `errors`. */
export function parseTxt(text: string): ParsedTxt {
  const result: ParsedTxt = { aliases: [], port: null, errors: [] };
  const byKey = new Map<string, ParsedTxt["aliases"][number]>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    // Zone-file style quoting is accepted: "forward-email=..."
    const quoted = /^"(.*)"$/.exec(trimmed);
    const value = quoted ? quoted[1]! : trimmed;
    const offset = raw.indexOf(value) + 1;
    if (value.toLowerCase().startsWith(PORT_PREFIX)) {
      const port = value.slice(PORT_PREFIX.length).trim();
      if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
        result.errors.push({ line, column: offset + PORT_PREFIX.length, token: port, message: "the port must be a number from 1 to 65535" });
      } else result.port = Number(port);
      return;
    }
    if (!value.toLowerCase().startsWith(PREFIX)) {
      result.errors.push({ line, column: offset, token: value.split(/[=,]/)[0]!, message: `expected a value starting with ${PREFIX} or ${PORT_PREFIX}` });
      return;
    }
    for (const element of splitElements(value, PREFIX.length)) {
      const column = offset + element.start;
      const parsed = parseElement(element.text);
      if ("error" in parsed) {
        result.errors.push({ line, column, token: element.text, message: parsed.error });
        continue;
      }
      const key = `${parsed.matcher}:${parsed.matcher === "exact" ? parsed.pattern.toLowerCase() : parsed.pattern}`;
      const existing = byKey.get(key);
      if (!existing) {
        const alias = { ...parsed, line, column };
        byKey.set(key, alias);
        result.aliases.push(alias);
        continue;
      }
      if ((existing.disabled ?? null) !== (parsed.disabled ?? null) || !!existing.global !== !!parsed.global) {
        result.errors.push({ line, column, token: element.text, message: `${element.text.split(":")[0]} is written differently (disabled marks or /g) in another place` });
        continue;
      }
      for (const r of parsed.recipients) if (!existing.recipients.includes(r)) existing.recipients.push(r);
    }
  });
  return result;
}

interface Element {
  text: string;
  /** Offset in the value (0-based). */
  start: number;
}

/** Splits at commas, except inside a regex literal (`/a{1,3}/` keeps its comma). */
function splitElements(value: string, from: number): Element[] {
  const elements: Element[] = [];
  let start = from;
  let i = from;
  while (i <= value.length) {
    const atElementStart = value.slice(start, i).trim().replace(/^!{0,3}/, "") === "";
    if (atElementStart && value[i] === "/") {
      i = regexEnd(value, i);
      continue;
    }
    if (i === value.length || value[i] === ",") {
      elements.push({ text: value.slice(start, i).trim(), start });
      start = i + 1;
    }
    i++;
  }
  return elements;
}

/** Index just past the closing slash of the regex literal opening at `open` (or the end of the value). */
function regexEnd(value: string, open: number): number {
  let inClass = false;
  for (let i = open + 1; i < value.length; i++) {
    const c = value[i];
    if (c === "\\") i++;
    else if (c === "[") inClass = true;
    else if (c === "]") inClass = false;
    else if (c === "/" && !inClass) return i + 1;
  }
  return value.length;
}

function parseElement(text: string): AliasInput | { error: string } {
  if (text === "") return { error: "empty element (two commas in a row?)" };
  const marks = /^!*/.exec(text)![0].length;
  if (marks > 3) return { error: "at most three ! marks (! drop, !! soft 421, !!! hard 550)" };
  const disabled = marks ? MODES[marks]! : null;
  const rest = text.slice(marks);

  if (rest.startsWith("/")) {
    const end = regexEnd(rest, 0);
    const closed = end <= rest.length && rest[end - 1] === "/" && end > 1;
    if (!closed) return { error: "regex is not closed with /" };
    const pattern = rest.slice(1, end - 1);
    let tail = rest.slice(end);
    const global = tail.startsWith("g");
    if (global) tail = tail.slice(1);
    if (tail !== "" && !tail.startsWith(":")) return { error: `unexpected "${tail}" after the regex (only the g flag is allowed; i is always on)` };
    const target = tail.slice(1).trim();
    const markTarget = /^!{1,3}$/.test(target);
    if (markTarget && disabled) return { error: "disabled twice (marks before the regex and as its recipient)" };
    const mode = markTarget ? MODES[target.length]! : disabled;
    if (!target && !mode) return { error: "a regex needs a recipient after :" };
    return { matcher: "regex", pattern, global, recipients: target && !markTarget ? [target] : [], disabled: mode };
  }

  // A bare URL is a catch-all webhook; its "https:" is not a name separator.
  if (!disabled && /^https?:\/\//i.test(rest)) return { matcher: "catch-all", pattern: "*", recipients: [rest], disabled: null };
  const colon = rest.indexOf(":");
  if (colon === -1) {
    if (disabled) return nameOnly(rest, disabled);
    return { matcher: "catch-all", pattern: "*", recipients: [rest], disabled: null };
  }
  const name = rest.slice(0, colon).trim();
  const recipient = rest.slice(colon + 1).trim();
  if (!name) return { error: "missing alias name before :" };
  if (!recipient) return { error: `missing recipient after ${name}:` };
  if (name === "*") return { matcher: "catch-all", pattern: "*", recipients: [recipient], disabled };
  return { matcher: "exact", pattern: name, recipients: [recipient], disabled };
}

function nameOnly(name: string, disabled: DisabledMode): AliasInput {
  return name === "*" ? { matcher: "catch-all", pattern: "*", recipients: [], disabled } : { matcher: "exact", pattern: name, recipients: [], disabled };
}

type Printable = Pick<AliasRule, "matcher" | "pattern" | "global" | "recipients" | "disabled">;

/** One TXT value per alias, in the order given (keep creation order: it is regex precedence). */
export function printTxt(aliases: Printable[], port: number | null = null): string[] {
  const lines = aliases.map((alias) => PREFIX + printAlias(alias).join(","));
  if (port !== null) lines.push(`${PORT_PREFIX}${port}`);
  return lines;
}

function printAlias(alias: Printable): string[] {
  const mark = alias.disabled ? MARKS[alias.disabled] : "";
  const name = aliasLabel(alias);
  // Commas separate elements, so a URL keeps its meaning with the comma percent-encoded.
  const recipients = alias.recipients.map((r) => (/^https?:/i.test(r) ? r.replaceAll(",", "%2C") : r));
  if (recipients.length === 0) return [alias.matcher === "regex" ? `${name}:${mark}` : `${mark}${name}`];
  if (alias.matcher === "catch-all" && !mark) return recipients;
  return recipients.map((r) => `${mark}${name}:${r}`);
}
