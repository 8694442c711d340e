// Webhook recipients (docs/aliases.md, "Webhooks"): one signed JSON POST per URL per message,
// retried a few times within the session, answered to the SMTP sender with
// what the endpoint said.
import { createHmac } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { createReadStream } from "node:fs";
import { open, unlink } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StringDecoder } from "node:string_decoder";
import type { AttachmentStream, MessageText } from "mailparser";
import type { Reason } from "../mail/decision.ts";
import { type MessageBody, type MessageParts, openMessage } from "../mail/message.ts";
import { asciiJsonInner, byteList } from "./json-bytes.ts";
import type { AuthResults } from "../auth/inbound.ts";
import type { Resolver } from "../dns/resolver.ts";
import { type Reply, reply } from "../mail/reply.ts";
import type { Session } from "../smtp/session.ts";
import { VERSION } from "../version.ts";
import { isPrivateAddress, literalHost } from "../net/ssrf.ts";

/** Query parameters that slim the payload; they are removed before the request. */
const SLIMMING = { attachments: ["attachments"], raw: ["raw"], headers: ["headers", "headerLines"] } as const;

/** Inline images up to this size become data: URLs in `html`, as simpleParser does; larger ones keep their cid: link. */
const INLINE_IMAGE_LIMIT = 256 * 1024;

export interface WebhookMessage {
  message: MessageParts;
  auth: AuthResults;
  session: Session;
  hostname: string;
  arrival: Date;
}

/**
 * The JSON body of a message's POSTs, built once for all its URLs: each
 * top-level field as JSON text, small ones in memory, the large ones
 * (attachments, raw) as byte ranges of memory or, for a spooled message, of a
 * file next to its spool file, so a large message is never held whole.
 */
export interface WebhookPayload {
  fields: Record<string, Piece>;
  /** The `session` field, completed per URL with its first recipient. */
  session: Record<string, unknown>;
  /** Removes the payload's file, if it has one. */
  discard(): Promise<void>;
}

/** JSON text, in memory or a byte range [start, end) of the payload's storage. */
type Piece = string | { store: Storage; start: number; end: number };
type Storage = { bytes: Buffer } | { path: string };

/** mailparser could not parse the message (e.g. MIME nested too deep): a retry would fail the same way. */
export class UnparsableMessage extends Error {}

/**
 * Payloads of spooled (large) messages are built one at a time: parsing one
 * makes tens of MB of short-lived garbage in mailparser, which the collector
 * returns late; ten at once took the process past 450 MB (bench/large.ts).
 */
let largeBuilds: Promise<unknown> = Promise.resolve();

/** The payload of a message: mailparser's parse (simpleParser's fields), raw, auth results and the SMTP session. */
export function webhookPayload(m: WebhookMessage): Promise<WebhookPayload> {
  if ("bytes" in m.message.body) return buildPayload(m);
  const turn = largeBuilds.then(() => buildPayload(m));
  largeBuilds = turn.catch(() => {});
  return turn;
}

async function buildPayload(m: WebhookMessage): Promise<WebhookPayload> {
  const sink = await openSink(m.message.body);
  try {
    const parsed = await parseInto(m.message, sink);
    const raw = await sink.field(async (write) => {
      // ASCII (nearly every large message) is escaped byte by byte; from the first other byte on, as UTF-8 text.
      const decoder = new StringDecoder("utf8");
      let ascii = true;
      await write('"');
      for await (const chunk of openMessage(m.message) as AsyncIterable<Buffer>) {
        const escaped: Buffer | null = ascii ? asciiJsonInner(chunk) : null;
        ascii = escaped !== null;
        await write(escaped ?? jsonInner(decoder.write(chunk)));
      }
      await write(jsonInner(decoder.end()) + '"');
    });
    const store = await sink.close();
    const { headers, ...rest } = parsed.fields;
    const small = { ...rest, headers: Object.fromEntries((headers as Map<string, unknown> | undefined) ?? []), dkim: m.auth.detail.dkim, spf: m.auth.detail.spf, arc: m.auth.detail.arc, dmarc: m.auth.detail.dmarc, bimi: m.auth.detail.bimi };
    const fields: Record<string, Piece> = Object.fromEntries(Object.entries(small).map(([k, v]) => [k, JSON.stringify(v) ?? "null"]));
    fields.attachments = { store, ...parsed.attachments };
    fields.raw = { store, ...raw };
    return { fields, session: sessionOf(m), discard: () => ("path" in store ? unlink(store.path).catch(() => {}) : Promise.resolve()) };
  } catch (err) {
    await sink.abandon();
    throw err;
  }
}

const jsonInner = (text: string) => JSON.stringify(text).slice(1, -1);

function sessionOf(m: WebhookMessage): Record<string, unknown> {
  return {
    remoteAddress: m.session.remoteIp,
    remotePort: m.session.remotePort,
    clientHostname: m.session.clientHost ?? `[${m.session.remoteIp}]`,
    hostNameAppearsAs: m.session.helo,
    sender: m.session.mailFrom,
    mta: m.hostname,
    arrivalDate: m.arrival.toISOString(),
    arrivalTime: m.arrival.getTime(),
  };
}

/** Where the large fields are written: memory for a message in memory, a file beside the spool file for a spooled one. */
interface Sink {
  /** Writes one field's JSON text; its byte range. */
  field(write: (write: (json: string | Buffer) => Promise<void>) => Promise<void>): Promise<{ start: number; end: number }>;
  close(): Promise<Storage>;
  abandon(): Promise<void>;
}

async function openSink(body: MessageBody): Promise<Sink> {
  let length = 0;
  const chunks: Buffer[] = [];
  const path = "path" in body ? `${body.path}.webhook.json` : null;
  const file = path ? await open(path, "w", 0o600) : null;
  const put = async (json: string | Buffer) => {
    const bytes = typeof json === "string" ? Buffer.from(json, "utf8") : json;
    length += bytes.length;
    if (file) await file.write(bytes);
    else chunks.push(bytes);
  };
  return {
    async field(write) {
      const start = length;
      await write(put);
      return { start, end: length };
    },
    async close() {
      await file?.close();
      return path ? { path } : { bytes: Buffer.concat(chunks, length) };
    },
    async abandon() {
      await file?.close().catch(() => {});
      if (path) await unlink(path).catch(() => {});
    },
  };
}

/** simpleParser's result, but each attachment's content goes to the sink as it is decoded instead of into memory. */
async function parseInto(message: MessageParts, sink: Sink): Promise<{ fields: Record<string, unknown>; attachments: { start: number; end: number } }> {
  // mailparser (with its charset tables and link finder) loads with the first webhook delivery, not at start.
  const { MailParser } = await import("mailparser");
  const parser = new MailParser();
  const source = openMessage(message);
  let readError: Error | null = null;
  source.once("error", (err) => {
    readError = err;
    parser.destroy(err);
  });
  source.pipe(parser);
  const fields: Record<string, unknown> = {};
  const inlineImages = new Map<AttachmentStream, Buffer>();
  parser.on("headers", (headers) => {
    fields.headers = headers;
    fields.headerLines = parser.headerLines;
  });
  try {
    const attachments = await sink.field(async (write) => {
      await write("[");
      let first = true;
      for await (const data of parser as AsyncIterable<MessageText | AttachmentStream>) {
        if (data.type === "text") {
          for (const key of ["text", "html", "textAsHtml", "textConversionError"] as const) if (key in data) fields[key] = data[key];
          continue;
        }
        await writeAttachment(data, first, write, inlineImages);
        first = false;
      }
      await write("]");
    });
    for (const key of ["subject", "references", "date", "to", "from", "cc", "bcc", "message-id", "in-reply-to", "reply-to"]) {
      const headers = fields.headers as Map<string, unknown> | undefined;
      if (headers?.has(key)) fields[key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = headers.get(key);
    }
    fields.html = await new Promise((resolve, reject) =>
      parser.updateImageLinks((a, done) => {
        const content = inlineImages.get(a as AttachmentStream);
        done(null, content ? `data:${a.contentType};base64,${content.toString("base64")}` : undefined);
      }, (err, html) => (err ? reject(err) : resolve(html))),
    );
    return { fields, attachments };
  } catch (err) {
    if (readError) throw readError;
    throw new UnparsableMessage(err instanceof Error ? err.message : String(err));
  }
}

/** One attachment as simpleParser's JSON has it: content as {"type":"Buffer","data":[…]}, then its other fields. */
async function writeAttachment(a: AttachmentStream, first: boolean, write: (json: string | Buffer) => Promise<void>, inlineImages: Map<AttachmentStream, Buffer>) {
  await write(`${first ? "" : ","}{"content":{"type":"Buffer","data":[`);
  const kept: Buffer[] = [];
  let size = 0;
  for await (const chunk of a.content as AsyncIterable<Buffer>) {
    await write(byteList(chunk, size > 0));
    size += chunk.length;
    if (a.cid && size <= INLINE_IMAGE_LIMIT) kept.push(chunk);
  }
  a.release?.();
  if (a.cid && size <= INLINE_IMAGE_LIMIT) inlineImages.set(a, Buffer.concat(kept));
  // What is left is what simpleParser's attachment has besides its content (release is null by now).
  const { content: _content, ...rest } = a;
  const others = JSON.stringify(rest);
  await write(others === "{}" ? "]}}" : `]},${others.slice(1)}`);
}

/** The URL without its slimming parameters, and the payload without the fields they remove. */
export function slimmed<T>(url: string, payload: Record<string, T>): { url: string; payload: Record<string, T> } {
  const target = new URL(url);
  const out = { ...payload };
  for (const [param, fields] of Object.entries(SLIMMING)) {
    if (!target.searchParams.has(param)) continue;
    if (target.searchParams.get(param) === "false") for (const f of fields) delete out[f];
    target.searchParams.delete(param);
  }
  return { url: target.href, payload: out };
}

export function signature(body: string | Buffer, key: string): string {
  return createHmac("sha256", key).update(body).digest("hex");
}

export interface WebhookOptions {
  resolver: Resolver;
  timeoutMs: number;
  allowPrivate: boolean;
  retries?: number;
  backoffMs?: number;
}

export interface Attempt {
  status: number | null;
  error: string | null;
  /** The start of the response body, for the mail log. */
  excerpt: string;
}

export interface WebhookOutcome {
  reply: Reply;
  attempts: Attempt[];
  /** Set when the answer is ours, not the endpoint's. */
  reason?: Reason;
}

/** 4xx answers worth another try (timeout, too large for now, too many requests); any 5xx is too. */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([408, 413, 429]);
const EXCERPT = 300;

/** What one URL gets: the message's payload (built on first use, after the URL passed its checks) and the recipients leading to it. */
export interface WebhookDelivery {
  payload: () => Promise<WebhookPayload>;
  recipients: string[];
}

export async function postWebhook(rawUrl: string, delivery: WebhookDelivery, key: string, opts: WebhookOptions): Promise<WebhookOutcome> {
  const target = new URL(rawUrl);
  const addresses = await addressesOf(target, opts.resolver);
  if ("refuse" in addresses) return { reply: addresses.refuse, attempts: [] };
  const privateOne = addresses.list.find(isPrivateAddress);
  if (privateOne && !opts.allowPrivate) {
    return { reply: reply(550, "5.7.1", `webhook ${target.host} resolves to a private address (${privateOne}); refused`), attempts: [] };
  }
  let payload: WebhookPayload;
  try {
    payload = await delivery.payload();
  } catch (err) {
    if (!(err instanceof UnparsableMessage)) throw err;
    return { reply: reply(550, "5.6.0", `The message cannot be parsed for webhook ${target.host} (${err.message})`), attempts: [], reason: "unparsable_message" };
  }
  const recipients = delivery.recipients;
  const all = { ...payload.fields, recipients: JSON.stringify(recipients), session: JSON.stringify({ recipient: recipients[0], ...payload.session }) };
  const { url, payload: fields } = slimmed<Piece>(rawUrl, all);
  const body = bodyPieces(fields);
  const sig = await signPieces(body, key);

  const attempts: Attempt[] = [];
  const retries = opts.retries ?? 3;
  for (let n = 0; n <= retries; n++) {
    if (n > 0) await Bun.sleep((opts.backoffMs ?? 500) * 2 ** (n - 1));
    const attempt = await request(new URL(url), addresses.list[0]!, body, sig, opts.timeoutMs);
    if (attempt.status !== null && attempt.status >= 200 && attempt.status < 300) return { reply: reply(250, "2.0.0", `webhook ${target.host} accepted (HTTP ${attempt.status})`), attempts };
    attempts.push(attempt);
    if (attempt.status !== null && attempt.status < 500 && !RETRYABLE_STATUS.has(attempt.status)) {
      return { reply: reply(550, "5.0.0", `webhook ${target.host} answered HTTP ${attempt.status}`), attempts };
    }
  }
  const last = attempts[attempts.length - 1]!;
  const what = last.status !== null ? `answered HTTP ${last.status}` : `failed (${last.error})`;
  return { reply: reply(421, "4.4.0", `webhook ${target.host} ${what} after ${attempts.length} attempts; try again later`), attempts };
}

/** The JSON object of the given fields, as the pieces to send in order. */
function bodyPieces(fields: Record<string, Piece>): Piece[] {
  const pieces: Piece[] = [];
  for (const [name, value] of Object.entries(fields)) pieces.push(`${pieces.length ? "," : "{"}${JSON.stringify(name)}:`, value);
  pieces.push(pieces.length ? "}" : "{}");
  return pieces;
}

async function* readPieces(pieces: Piece[]): AsyncGenerator<Buffer> {
  for (const piece of pieces) {
    if (typeof piece === "string") yield Buffer.from(piece, "utf8");
    else if ("bytes" in piece.store) yield piece.store.bytes.subarray(piece.start, piece.end);
    else if (piece.end > piece.start) yield* createReadStream(piece.store.path, { start: piece.start, end: piece.end - 1, highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>;
  }
}

/** The HMAC of the exact body and its length, read once through. */
async function signPieces(pieces: Piece[], key: string): Promise<{ hex: string; length: number }> {
  const hmac = createHmac("sha256", key);
  let length = 0;
  for await (const chunk of readPieces(pieces)) {
    hmac.update(chunk);
    length += chunk.length;
  }
  return { hex: hmac.digest("hex"), length };
}

async function addressesOf(url: URL, resolver: Resolver): Promise<{ list: string[] } | { refuse: Reply }> {
  const literal = literalHost(url);
  if (literal) return { list: [literal] };
  const list: string[] = [];
  for (const type of ["A", "AAAA"] as const) list.push(...(await resolver.resolve(url.hostname, type).catch(() => [] as string[])));
  if (list.length === 0) return { refuse: reply(421, "4.4.3", `webhook host ${url.hostname} has no address (DNS), try again later`) };
  return { list };
}

/** One POST to the address we checked, with the URL's name for Host and TLS (so DNS cannot change it in between). */
function request(url: URL, address: string, body: Piece[], sig: { hex: string; length: number }, timeoutMs: number): Promise<Attempt> {
  const secure = url.protocol === "https:";
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: Attempt) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(a);
      }
    };
    const req = (secure ? https : http).request(
      {
        host: address,
        port: url.port || (secure ? 443 : 80),
        path: url.pathname + url.search,
        method: "POST",
        servername: literalHost(url) ? undefined : url.hostname,
        headers: {
          host: url.host,
          "content-type": "application/json",
          "content-length": sig.length,
          "user-agent": `mailferry/${VERSION}`,
          "x-webhook-signature": sig.hex,
        },
      },
      (res) => {
        let excerpt = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (excerpt.length < EXCERPT) excerpt += chunk.slice(0, EXCERPT - excerpt.length);
        });
        res.on("end", () => done({ status: res.statusCode ?? 0, error: null, excerpt }));
        res.on("error", (err) => done({ status: res.statusCode ?? null, error: err.message, excerpt }));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      done({ status: null, error: `timed out after ${timeoutMs} ms`, excerpt: "" });
    }, timeoutMs);
    req.on("error", (err) => done({ status: null, error: err.message, excerpt: "" }));
    pipeline(Readable.from(readPieces(body)), req).catch((err: Error) => done({ status: null, error: err.message, excerpt: "" }));
  });
}
