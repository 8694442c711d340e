// Reading DATA with bounded memory (docs/architecture.md, "Bounded memory"):
// a small message stays in memory; a large one, or any message once the
// process-wide budget is used up, goes to a file of its own under
// <data dir>/spool (0600), removed when the transaction ends. Past the size
// limit the rest of DATA is discarded as it arrives. The spool holds nothing
// worth keeping across a restart (no 250 was given for its messages), so it
// is emptied at start.
import { createHash, type Hash } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { open, type FileHandle, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { SMTPServerDataStream } from "smtp-server";
import { headerBlockEnd, parseHeaderBlock } from "../mail/headers.ts";
import type { MessageBody } from "../mail/message.ts";
import type { InboundMessage } from "./session.ts";

/** Messages up to this size stay in memory. */
export const IN_MEMORY_LIMIT = 1024 * 1024;
/** At most this many bytes of message data in memory at once, all sessions together; past it new messages spool. */
export const MEMORY_BUDGET = 32 * 1024 * 1024;
/** Header blocks longer than this are not parsed (the message still passes whole, all of it as body). */
const MAX_HEADER_SCAN = 256 * 1024;

export interface Received {
  message: InboundMessage;
  /** The transaction is over: memory goes back to the budget; the spool file goes once the work that outlives the answer ends. */
  release(): void;
}

export interface Spool {
  readonly dir: string;
  /** Bytes of message data held in memory now. */
  readonly held: number;
  receive(stream: SMTPServerDataStream): Promise<Received>;
}

export function createSpool(dataDir: string): Spool {
  const dir = join(dataDir, "spool");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let held = 0;
  let sequence = 0;
  const budget = {
    take(bytes: number): boolean {
      if (held + bytes > MEMORY_BUDGET) return false;
      held += bytes;
      return true;
    },
    give(bytes: number) {
      held -= bytes;
    },
  };
  return {
    dir,
    get held() {
      return held;
    },
    receive: (stream) => readData(stream, budget, () => join(dir, `${process.pid}.${Date.now()}.${++sequence}`)),
  };
}

interface Budget {
  take(bytes: number): boolean;
  give(bytes: number): void;
}

/** Where DATA goes while it arrives: memory, then a spool file once large; nothing once oversized. */
interface Sink {
  chunks: Buffer[];
  inMemory: number;
  file: FileHandle | null;
  path: string | null;
  /** The start of the message, until its header block is complete (at most MAX_HEADER_SCAN). */
  prefix: Buffer;
  headerEnd: number;
  size: number;
  /** SHA-256 of the body, taken as it arrives (the fingerprint needs it; no second read). */
  bodyHash: Hash;
}

function readData(stream: SMTPServerDataStream, budget: Budget, nextPath: () => string): Promise<Received> {
  const sink: Sink = { chunks: [], inMemory: 0, file: null, path: null, prefix: Buffer.alloc(0), headerEnd: -1, size: 0, bodyHash: createHash("sha256") };
  let writing = Promise.resolve();
  let failed: Error | null = null;
  const forget = () => {
    budget.give(sink.inMemory);
    sink.chunks = [];
    sink.inMemory = 0;
  };

  stream.on("data", (chunk: Buffer) => {
    sink.size += chunk.length;
    scanHeader(sink, chunk);
    hashBody(sink, chunk);
    if (stream.sizeExceeded) {
      forget();
      return;
    }
    if (!sink.file && !sink.path && sink.inMemory + chunk.length <= IN_MEMORY_LIMIT && budget.take(chunk.length)) {
      sink.chunks.push(chunk);
      sink.inMemory += chunk.length;
      return;
    }
    // To the spool file, in order; DATA waits while the disk is behind.
    stream.pause();
    writing = writing
      .then(() => spoolChunk(sink, chunk, nextPath, forget))
      .catch((err: Error) => void (failed ??= err))
      .finally(() => stream.resume());
  });

  return new Promise((resolve, reject) => {
    stream.on("error", (err) => {
      forget();
      void writing.then(() => dropFile(sink)).finally(() => reject(err));
    });
    stream.on("end", () => {
      void writing.then(async () => {
        await sink.file?.close();
        sink.file = null;
        if (failed || stream.sizeExceeded) await dropFile(sink);
        if (failed) {
          forget();
          return reject(failed);
        }
        resolve(received(sink, stream.sizeExceeded, forget));
      });
    });
  });
}

/** Keeps the start of the message until its header block ends (or MAX_HEADER_SCAN is reached). */
function scanHeader(sink: Sink, chunk: Buffer) {
  if (sink.headerEnd !== -1 || sink.prefix.length >= MAX_HEADER_SCAN) return;
  sink.prefix = Buffer.concat([sink.prefix, chunk.subarray(0, MAX_HEADER_SCAN - sink.prefix.length)]);
  sink.headerEnd = headerBlockEnd(sink.prefix);
}

/** Hashes what is body: past the header block's end, or everything once the header scan gave up (a message without header block). */
function hashBody(sink: Sink, chunk: Buffer) {
  const chunkStart = sink.size - chunk.length;
  if (sink.headerEnd !== -1) return void sink.bodyHash.update(chunk.subarray(Math.max(0, sink.headerEnd - chunkStart)));
  if (sink.prefix.length < MAX_HEADER_SCAN) return;
  // The scan just gave up: the whole message is body, the bytes before this chunk included.
  if (chunkStart < MAX_HEADER_SCAN) sink.bodyHash.update(sink.prefix.subarray(0, chunkStart));
  sink.bodyHash.update(chunk);
}

async function spoolChunk(sink: Sink, chunk: Buffer, nextPath: () => string, forget: () => void) {
  if (!sink.file) {
    sink.path = nextPath();
    sink.file = await open(sink.path, "wx", 0o600);
    for (const held of sink.chunks) await sink.file.write(held);
    forget();
  }
  await sink.file.write(chunk);
}

async function dropFile(sink: Sink) {
  await sink.file?.close().catch(() => {});
  sink.file = null;
  if (sink.path) await unlink(sink.path).catch(() => {});
  sink.path = null;
}

function received(sink: Sink, oversized: boolean, forget: () => void): Received {
  // No blank line: a message without body is all header, unless we only saw part of it.
  const headerEnd = sink.headerEnd !== -1 ? sink.headerEnd : sink.prefix.length === sink.size ? sink.size : 0;
  const whole = sink.path ? null : Buffer.concat(sink.chunks, sink.inMemory);
  const head = whole ? whole.subarray(0, headerEnd) : Buffer.from(sink.prefix.subarray(0, headerEnd));
  const body: MessageBody = oversized ? { bytes: Buffer.alloc(0) } : whole ? { bytes: whole.subarray(headerEnd) } : { path: sink.path!, offset: headerEnd };
  const headerBlock = sink.prefix.subarray(0, headerEnd).toString("utf8");
  const outliving: Promise<unknown>[] = [];
  const bodySha256 = sink.bodyHash.digest("hex");
  const message: InboundMessage = { size: sink.size, oversized, headers: parseHeaderBlock(headerBlock), headerBlock, head: oversized ? Buffer.alloc(0) : head, body, bodySha256, outliving };
  sink.chunks = whole ? [whole] : [];
  return {
    message,
    release() {
      forget();
      void Promise.allSettled(outliving).then(() => dropFile(sink));
    },
  };
}
