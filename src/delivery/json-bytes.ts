// JSON text written straight into bytes for the webhook payload of a large
// message: building it as strings first (Array.join, JSON.stringify) made
// three to four times the message in short-lived garbage, which the
// collector gave back too late to keep the process small (issue 17).

const DIGITS = Array.from({ length: 256 }, (_, n) => Buffer.from(String(n), "latin1"));

/** The bytes as a JSON number list ("1,2,3"), a comma first when `more` (as Buffer's JSON has them). */
export function byteList(chunk: Buffer, more: boolean): Buffer {
  const out = Buffer.allocUnsafe(chunk.length * 4 + 1);
  let at = 0;
  for (let i = 0; i < chunk.length; i++) {
    if (more || i > 0) out[at++] = 0x2c;
    const digits = DIGITS[chunk[i]!]!;
    for (let d = 0; d < digits.length; d++) out[at++] = digits[d]!;
  }
  return out.subarray(0, at);
}

const ESCAPES: Record<number, string> = { 0x22: '\\"', 0x5c: "\\\\", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t", 0x08: "\\b", 0x0c: "\\f" };

/** An ASCII chunk as the inside of a JSON string (what JSON.stringify writes between the quotes); null when it holds a non-ASCII byte. */
export function asciiJsonInner(chunk: Buffer): Buffer | null {
  const out = Buffer.allocUnsafe(chunk.length * 6);
  let at = 0;
  for (let i = 0; i < chunk.length; i++) {
    const byte = chunk[i]!;
    if (byte >= 0x80) return null;
    if (byte >= 0x20 && byte !== 0x22 && byte !== 0x5c) {
      out[at++] = byte;
      continue;
    }
    const escaped = ESCAPES[byte] ?? `\\u00${byte.toString(16).padStart(2, "0")}`;
    at += out.write(escaped, at, "latin1");
  }
  return out.subarray(0, at);
}
