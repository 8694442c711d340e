// The message header block: found while streaming, parsed for the few fields
// the session needs. The message bytes themselves are never altered here.

export interface HeaderField {
  /** Lower-case field name. */
  name: string;
  /** Unfolded value, without the leading space. */
  value: string;
}

/** Offset just past the blank line ending the header block, or -1 if not in `buf` yet. */
export function headerBlockEnd(buf: Buffer): number {
  if (buf[0] === 0x0a) return 1;
  if (buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  const crlf = buf.indexOf("\r\n\r\n");
  const lf = buf.indexOf("\n\n");
  if (crlf === -1 && lf === -1) return -1;
  if (lf === -1 || (crlf !== -1 && crlf < lf)) return crlf + 4;
  return lf + 2;
}

export function parseHeaderBlock(block: string): HeaderField[] {
  const fields: HeaderField[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === "") break;
    const last = fields[fields.length - 1];
    if (/^[ \t]/.test(line)) {
      if (last) last.value += " " + line.trim();
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue; // not a header line: ignore rather than guess
    fields.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() });
  }
  return fields;
}

export function headerValue(fields: HeaderField[], name: string): string | undefined {
  return fields.find((f) => f.name === name)?.value;
}

/** One header field exactly as it appeared, folding and line ending included. */
export interface RawField {
  /** Lower-case field name. */
  name: string;
  raw: string;
}

/**
 * Splits a header block into its fields, byte-exact (work on latin1 strings:
 * one char per byte, so any encoding survives the round trip).
 */
export function splitRawFields(block: string): RawField[] {
  const fields: RawField[] = [];
  const lines = block.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  for (const line of lines) {
    if (/^\r?\n$/.test(line)) break;
    const last = fields[fields.length - 1];
    if (last && /^[ \t]/.test(line)) last.raw += line;
    else fields.push({ name: line.slice(0, Math.max(0, line.indexOf(":"))).trim().toLowerCase(), raw: line });
  }
  return fields;
}

/**
 * The message with its header block replaced by `edit(fields)`. Fields left
 * untouched keep their exact bytes; the body is not copied when nothing changes.
 */
export function editHeaders(raw: Buffer, bodyOffset: number, edit: (fields: RawField[]) => RawField[]): Buffer {
  const block = raw.subarray(0, bodyOffset).toString("latin1");
  const fields = splitRawFields(block);
  const edited = edit(fields);
  if (edited.length === fields.length && edited.every((f, i) => f === fields[i])) return raw;
  const separator = block.slice(fields.reduce((n, f) => n + f.raw.length, 0));
  return Buffer.concat([Buffer.from(edited.map((f) => f.raw).join("") + separator, "latin1"), raw.subarray(bodyOffset)]);
}
