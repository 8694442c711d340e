// Reading DATA with bounded memory (src/smtp/spool.ts): small messages stay in
// memory, large ones and any past the process-wide budget go to a private file,
// the body's SHA-256 is taken as it arrives, and oversized data is not kept.
import { afterAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { SMTPServerDataStream } from "smtp-server";
import { openMessage } from "../src/mail/message.ts";
import { createSpool, IN_MEMORY_LIMIT, MEMORY_BUDGET } from "../src/smtp/spool.ts";

const dataDir = mkdtempSync(join(tmpdir(), "mailferry-spool-"));
const spool = createSpool(dataDir);
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

/** DATA as smtp-server hands it over: chunks, then the end; `limit` marks it oversized past that many bytes. */
function dataStream(raw: Buffer, limit = Infinity, chunk = 64 * 1024): SMTPServerDataStream {
  const stream = new PassThrough() as unknown as SMTPServerDataStream;
  stream.sizeExceeded = false;
  void (async () => {
    for (let at = 0; at < raw.length; at += chunk) {
      if (at + chunk > limit) stream.sizeExceeded = true;
      stream.write(raw.subarray(at, at + chunk));
      await Bun.sleep(0);
    }
    stream.end();
  })();
  return stream;
}

const message = (bodySize: number) => Buffer.concat([Buffer.from("From: <a@sender.test>\r\nSubject: spool\r\n\r\n"), Buffer.alloc(bodySize, "body line\r\n")]);

async function readAll(parts: Parameters<typeof openMessage>[0]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of openMessage(parts)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test("a small message stays in memory, with its header block and the body's hash", async () => {
  const raw = message(1000);
  const { message: received, release } = await spool.receive(dataStream(raw));
  expect("bytes" in received.body).toBe(true);
  expect(received.headerBlock).toBe("From: <a@sender.test>\r\nSubject: spool\r\n\r\n");
  expect(received.bodySha256).toBe(sha256(raw.subarray(received.head.length)));
  expect(await readAll(received)).toEqual(raw);
  release();
  expect(spool.held).toBe(0);
});

test("a large one goes to a 0600 file, read back whole, removed on release", async () => {
  const raw = message(3 * IN_MEMORY_LIMIT);
  const { message: received, release } = await spool.receive(dataStream(raw));
  expect("path" in received.body).toBe(true);
  const path = (received.body as { path: string }).path;
  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(spool.held).toBe(0);
  expect(received.bodySha256).toBe(sha256(raw.subarray(received.head.length)));
  expect((await readAll(received)).equals(raw)).toBe(true);
  release();
  await Bun.sleep(50);
  expect(readdirSync(spool.dir)).toEqual([]);
});

test("without a blank line: all header when short, all body when the header scan gives up", async () => {
  const short = Buffer.from("Subject: only a header\r\n");
  const a = await spool.receive(dataStream(short));
  expect(a.message.head).toEqual(short);
  expect(a.message.bodySha256).toBe(sha256(Buffer.alloc(0)));
  a.release();
  const junk = Buffer.alloc(300 * 1024, "x");
  const b = await spool.receive(dataStream(junk));
  expect(b.message.head.length).toBe(0);
  expect(b.message.bodySha256).toBe(sha256(junk));
  b.release();
});

test("past the budget for all messages in memory, small messages spool too", async () => {
  const held = await Promise.all(Array.from({ length: Math.ceil(MEMORY_BUDGET / IN_MEMORY_LIMIT) + 2 }, () => spool.receive(dataStream(message(IN_MEMORY_LIMIT - 1000)))));
  expect(spool.held).toBeLessThanOrEqual(MEMORY_BUDGET);
  expect(held.some((r) => "path" in r.message.body)).toBe(true);
  for (const r of held) r.release();
  await Bun.sleep(50);
  expect(spool.held).toBe(0);
  expect(readdirSync(spool.dir)).toEqual([]);
});

test("past the size limit nothing is kept", async () => {
  const { message: received, release } = await spool.receive(dataStream(message(4 * IN_MEMORY_LIMIT), 2 * IN_MEMORY_LIMIT));
  expect(received.oversized).toBe(true);
  expect(received.head.length).toBe(0);
  expect(received.body).toEqual({ bytes: Buffer.alloc(0) });
  expect(readdirSync(spool.dir)).toEqual([]);
  release();
});
