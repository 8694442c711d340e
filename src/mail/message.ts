// A received message as every step reads it: the header block in memory, the
// body either in memory (a small message) or in a spool file under the data
// directory (a large one), read as a stream so no step holds a large message
// whole (docs/architecture.md, "Bounded memory"). Plain data, so a worker
// thread receives the spool file's path rather than a copy of the bytes.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { headerBlockEnd } from "./headers.ts";

/** Where a message body is: its bytes, or a file and the offset of the body in it. */
export type MessageBody = { bytes: Buffer } | { path: string; offset: number };

/** A message as header block bytes (blank line included) and body. */
export interface MessageParts {
  head: Buffer;
  body: MessageBody;
}

/** A fresh stream of the body. */
export function openBody(body: MessageBody): Readable {
  if ("bytes" in body) return Readable.from([body.bytes]);
  return createReadStream(body.path, { start: body.offset, highWaterMark: 256 * 1024 });
}

export async function bodyLength(body: MessageBody): Promise<number> {
  return "bytes" in body ? body.bytes.length : (await stat(body.path)).size - body.offset;
}

/** A fresh stream of the whole message, `before` (e.g. added headers) first. */
export function openMessage({ head, body }: MessageParts, before?: Buffer): Readable {
  return Readable.from(
    (async function* () {
      if (before?.length) yield before;
      if (head.length) yield head;
      yield* openBody(body);
    })(),
  );
}

/** True when `needle` occurs in the stream; a match across two chunks counts. Only the seam is copied, never a chunk. */
export async function streamIncludes(stream: Readable, needle: string): Promise<boolean> {
  const pattern = Buffer.from(needle, "latin1");
  let tail = Buffer.alloc(0);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const seam = Buffer.concat([tail, chunk.subarray(0, pattern.length - 1)]);
    if (seam.includes(pattern) || chunk.includes(pattern)) {
      stream.destroy();
      return true;
    }
    const keep = pattern.length - 1;
    tail = Buffer.from(chunk.length >= keep ? chunk.subarray(chunk.length - keep) : seam.subarray(Math.max(0, seam.length - keep)));
  }
  return false;
}

/** Bare LFs become CRLF, across chunk boundaries too: feed the chunks in order. A chunk without bare LF passes as it is. */
export function crlfNormalizer(): (chunk: Buffer) => Buffer {
  let lastWasCr = false;
  return (chunk) => {
    if (chunk.length === 0) return chunk;
    const bare = hasBareLf(chunk, lastWasCr);
    const carried = lastWasCr && chunk[0] === 0x0a ? 1 : 0;
    lastWasCr = chunk[chunk.length - 1] === 0x0d;
    if (!bare) return chunk;
    // A LF at the start of a chunk follows the previous chunk's last byte.
    const text = chunk.toString("latin1");
    return Buffer.from(text.slice(0, carried) + text.slice(carried).replace(/(?<!\r)\n/g, "\r\n"), "latin1");
  };
}

function hasBareLf(chunk: Buffer, afterCr: boolean): boolean {
  for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
    if (!(i === 0 ? afterCr : chunk[i - 1] === 0x0d)) return true;
  }
  return false;
}

/** A message held whole in memory, split at its header block (mail we write, tests). */
export function partsOf(raw: Buffer): MessageParts {
  const end = headerBlockEnd(raw);
  const headEnd = end === -1 ? raw.length : end;
  return { head: raw.subarray(0, headEnd), body: { bytes: raw.subarray(headEnd) } };
}
