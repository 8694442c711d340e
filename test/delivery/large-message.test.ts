// Large messages with bounded memory (issue 17), against a real `mailferry
// serve` child process: a 45 MB message reaches a forwarding destination and
// a webhook intact while the process's peak RSS stays bounded; past the size
// limit DATA is answered 552 and not kept; spool files are private and gone
// after the transaction; a crash (SIGKILL) during DATA, spooling or delivery
// never answers 250, and the next start empties the spool; a target that
// accepted is recorded at once, so a crash before a slower one answers does
// not deliver its copy twice. The real numbers: bench/large.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac, randomBytes } from "node:crypto";
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importAliases } from "../../src/store/aliases.ts";
import { DATABASE_FILE, openStore } from "../../src/store/db.ts";
import { preparePrivateDataDir } from "../../src/store/data-dir.ts";
import { addDomain, webhookKey } from "../../src/store/domains.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { type ServeProcess, startServe } from "../support/serve-process.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { SmtpTalk, type SmtpReplyLines } from "../support/smtp-client.ts";

const MB = 1024 * 1024;
/** Generous: a safety bound only (the old code reached 622 MB forwarding and 1,317 MB to a webhook). */
const PEAK_RSS_BOUND_MB = 400;

let dns: DnsServer;
let sink: Sink;
let hanging: HangingMx;
let endpoint: ReturnType<typeof Bun.serve>;
let dataDir: string;
let hookKey: string;
let server: ServeProcess;
const bodies: string[] = [];
const work = mkdtempSync(join(tmpdir(), "mailferry-large-"));

beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2", tls: "none" });
  hanging = await startHangingMx("127.0.0.4", sink.port);
  endpoint = Bun.serve({ hostname: "127.0.0.3", port: 0, maxRequestBodySize: 1024 * MB, fetch: receiveToFile });
  dns = await startDnsServer({
    "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
    "mx.dest.test": { A: [sink.host] },
    "slow.test": { MX: [{ priority: 10, exchange: "mx.slow.test" }] },
    "mx.slow.test": { A: [hanging.host] },
    "hooks.test": { A: ["127.0.0.3"] },
  });
  dataDir = mkdtempSync(join(tmpdir(), "mailferry-large-data-"));
  await prepareData();
  server = await start();
}, 60_000);

afterAll(async () => {
  await server?.kill();
  await sink?.close();
  hanging?.close();
  endpoint?.stop(true);
  await dns?.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

async function prepareData() {
  preparePrivateDataDir(dataDir);
  const store = await openStore(join(dataDir, DATABASE_FILE));
  try {
    await addDomain(store.db, "big.test");
    const rules = `forward-email=fwd:someone@dest.test,hook:http://hooks.test:${endpoint.port}/h,slow:someone@slow.test,both:first@dest.test,both:second@slow.test`;
    const report = await importAliases(store.db, "big.test", rules, { apply: true, allowPrivateWebhooks: true });
    if (!report.applied) throw new Error(JSON.stringify(report.errors));
    hookKey = await webhookKey(store.db, "big.test");
  } finally {
    await store.close();
  }
}

const start = () =>
  startServe({
    MAILFERRY_DATA_DIR: dataDir,
    MAILFERRY_HOSTNAME: "mx.big.test",
    MAILFERRY_SMTP_PORT: "0",
    MAILFERRY_HTTP_PORT: "0",
    MAILFERRY_SMTP_MAX_SIZE: String(50 * MB),
    MAILFERRY_DNS_SERVERS: dns.address,
    MAILFERRY_DNS_TIMEOUT: "1s",
    MAILFERRY_OUTBOUND_PORT: String(sink.port),
    MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true",
    MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true",
    MAILFERRY_WEBHOOK_TIMEOUT: "120s",
    MAILFERRY_GREYLIST_DELAY: "0",
    MAILFERRY_VERIFY_DESTINATIONS: "false",
    MAILFERRY_LIMITS_CONNECTIONS_PER_HOUR: "1000000",
    // A worker thread, so the spool file's path crosses to it (on 2 cores the default runs on the main thread).
    MAILFERRY_FORWARDING_WORKER_THREADS: "1",
  });

/** Each webhook request's body goes to a file (the test process need not hold it twice). */
async function receiveToFile(req: Request): Promise<Response> {
  const path = join(work, `hook-${bodies.length}.json`);
  bodies.push(path);
  const out = createWriteStream(path);
  const hmac = createHmac("sha256", hookKey);
  for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
    hmac.update(chunk);
    out.write(chunk);
  }
  await new Promise((resolve) => out.end(resolve));
  const signed = hmac.digest("hex") === req.headers.get("x-webhook-signature");
  return new Response(signed ? "ok" : "bad signature", { status: signed ? 200 : 400 });
}

/** A message of about `size` bytes: a short text part and a base64 attachment of random bytes. */
function largeMessage(size: number, subject: string): { raw: Buffer; attachment: Buffer } {
  const attachment = randomBytes(Math.floor((size * 57) / 78));
  const base64 = attachment.toString("base64").replace(/.{76}/g, "$&\r\n");
  const head = [
    "From: Alice <alice@sender.test>",
    "To: someone@big.test",
    `Subject: ${subject}`,
    `Message-ID: <${subject.replaceAll(" ", "-")}.${Date.now()}@sender.test>`,
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="b1"',
    "",
    "--b1",
    "Content-Type: text/plain",
    "",
    `A large message: ${subject}`,
    "--b1",
    'Content-Type: application/octet-stream; name="big.bin"',
    'Content-Disposition: attachment; filename="big.bin"',
    "Content-Transfer-Encoding: base64",
    "",
    "",
  ].join("\r\n");
  return { raw: Buffer.from(`${head}${base64}\r\n--b1--\r\n`), attachment };
}

/** EHLO, MAIL and RCPT, then DATA's 354: the session, ready for the message. */
async function openData(to: string): Promise<SmtpTalk> {
  const { talk } = await SmtpTalk.connect(server.smtpPort);
  for (const command of ["EHLO client.test", "MAIL FROM:<alice@sender.test>", `RCPT TO:<${to}>`]) {
    const reply = await talk.send(command);
    if (reply.code !== 250) throw new Error(`${command}: ${reply.code} ${reply.text}`);
  }
  expect((await talk.send("DATA")).code).toBe(354);
  return talk;
}

async function sendLarge(to: string, raw: Buffer): Promise<SmtpReplyLines> {
  const talk = await openData(to);
  try {
    talk.write(raw);
    talk.write(".\r\n");
    return await talk.next(120_000);
  } finally {
    talk.close();
  }
}

const spoolFiles = () => readdirSync(join(dataDir, "spool"));

async function until(check: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(50);
  }
}

describe("a 45 MB message", () => {
  test("to a forwarding alias arrives intact", async () => {
    const { raw } = largeMessage(45 * MB, "forwarded large");
    const before = sink.messages.length;
    const reply = await sendLarge("fwd@big.test", raw);
    expect(reply.code).toBe(250);
    const [copy] = (await sink.waitForMessages(before + 1, 60_000)).slice(before);
    // Our trace, authentication and signature headers on top of the message exactly as sent.
    expect(copy!.raw.subarray(copy!.raw.length - raw.length).equals(raw)).toBe(true);
    expect(server.peakRssMb()).toBeLessThan(PEAK_RSS_BOUND_MB);
  }, 180_000);

  test("to a webhook alias arrives intact, signed, with its attachment", async () => {
    const { raw, attachment } = largeMessage(45 * MB, "webhook large");
    const reply = await sendLarge("hook@big.test", raw);
    expect(reply.code).toBe(250);
    const body = JSON.parse(readFileSync(bodies.at(-1)!, "utf8"));
    expect(body.raw).toBe(raw.toString("utf8"));
    expect(body.subject).toBe("webhook large");
    expect(body.attachments[0]).toMatchObject({ filename: "big.bin", size: attachment.length });
    expect(Buffer.from(body.attachments[0].content.data).equals(attachment)).toBe(true);
    expect(server.peakRssMb()).toBeLessThan(PEAK_RSS_BOUND_MB);
    expect(spoolFiles()).toEqual([]);
  }, 180_000);
});

describe("size limit and spool files", () => {
  test("a message over the size limit gets 552 and is not kept", async () => {
    const talk = await openData("fwd@big.test");
    const chunk = Buffer.from(("x".repeat(998) + "\r\n").repeat(1024));
    for (let sent = 0; sent < 80 * MB; sent += chunk.length) talk.write(chunk);
    talk.write(".\r\n");
    const reply = await talk.next(120_000);
    talk.close();
    expect(reply.code).toBe(552);
    expect(spoolFiles()).toEqual([]);
    expect(server.peakRssMb()).toBeLessThan(PEAK_RSS_BOUND_MB);
  }, 180_000);

  test("a large message is spooled to a 0600 file, removed when the transaction ends", async () => {
    const { raw } = largeMessage(8 * MB, "spooled");
    const talk = await openData("fwd@big.test");
    talk.write(raw.subarray(0, 4 * MB));
    await until(() => spoolFiles().length === 1);
    const path = join(dataDir, "spool", spoolFiles()[0]!);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, "spool")).mode & 0o777).toBe(0o700);
    talk.write(raw.subarray(4 * MB));
    talk.write(".\r\n");
    expect((await talk.next(60_000)).code).toBe(250);
    talk.close();
    await until(() => spoolFiles().length === 0);
  }, 60_000);
});

describe("a crash (SIGKILL)", () => {
  /** Kills the server while `talk` waits, expects no 250, restarts it and expects an empty spool. */
  async function crashAndRestart(talk: SmtpTalk) {
    const answer = talk.next(30_000).then((r) => r.code, () => null);
    await server.kill();
    expect(await answer).not.toBe(250);
    talk.close();
    server = await start();
    expect(spoolFiles()).toEqual([]);
  }

  test("during DATA: no 250, and the next start finds an empty spool", async () => {
    const talk = await openData("fwd@big.test");
    talk.write("From: <alice@sender.test>\r\nSubject: cut\r\n\r\nhalf a mess");
    await Bun.sleep(200);
    await crashAndRestart(talk);
  }, 60_000);

  test("during spooling: no 250, and the spool file is gone at the next start", async () => {
    const talk = await openData("fwd@big.test");
    talk.write(largeMessage(8 * MB, "cut while spooling").raw.subarray(0, 4 * MB));
    await until(() => spoolFiles().length === 1);
    await crashAndRestart(talk);
  }, 60_000);

  test("during delivery: no 250, and the next start finds an empty spool", async () => {
    const { raw } = largeMessage(4 * MB, "cut while delivering");
    const talk = await openData("slow@big.test");
    const seen = hanging.messages;
    talk.write(raw);
    talk.write(".\r\n");
    await until(() => hanging.messages > seen);
    await crashAndRestart(talk);
  }, 60_000);

  test("between one destination's acceptance and a slower one's: the retry does not deliver the first copy again", async () => {
    const raw = Buffer.from("From: Alice <alice@sender.test>\r\nTo: both@big.test\r\nSubject: two destinations\r\nMessage-ID: <two-destinations@sender.test>\r\n\r\nOnce each.\r\n");
    const first = () => sink.messages.filter((m) => m.rcptTo.includes("first@dest.test")).length;
    const talk = await openData("both@big.test");
    const seen = hanging.messages;
    talk.write(raw);
    talk.write(".\r\n");
    await until(() => first() === 1 && hanging.messages > seen).catch((err) => {
      throw new Error(`${err.message}: first ${first()}, hanging ${hanging.messages - seen}; ${server.errors.join("; ")}`);
    });
    // The acceptance is recorded as the reply arrives; give the write a moment before the crash.
    await Bun.sleep(300);
    await crashAndRestart(talk);
    // The sender retries: only the slower destination, now answering, gets the message again.
    hanging.answer = "250 2.0.0 ok";
    const retry = await sendLarge("both@big.test", raw);
    expect(retry.code).toBe(250);
    expect(first()).toBe(1);
  }, 60_000);
});

interface HangingMx {
  host: string;
  /** Messages whose DATA ended. */
  readonly messages: number;
  /** The reply to the end of DATA; null (the default) never answers. */
  answer: string | null;
  close(): void;
}

/** An MX that accepts every command and then, until told an answer, never answers the end of DATA, as a stuck destination would. */
async function startHangingMx(host: string, port: number): Promise<HangingMx> {
  let messages = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let inData = false;
    let buffer = "";
    socket.write("220 hanging.test ESMTP\r\n");
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("latin1");
      if (inData) {
        if (!buffer.includes("\r\n.\r\n")) return void (buffer = buffer.slice(-5));
        messages++;
        buffer = "";
        inData = false;
        if (mx.answer) socket.write(`${mx.answer}\r\n`);
        return;
      }
      let end: number;
      while (!inData && (end = buffer.indexOf("\r\n")) !== -1) {
        const line = buffer.slice(0, end).toUpperCase();
        buffer = buffer.slice(end + 2);
        if (line.startsWith("DATA")) (inData = true), socket.write("354 go on\r\n");
        else if (line.startsWith("QUIT")) socket.end("221 bye\r\n");
        else socket.write("250 ok\r\n");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const mx: HangingMx = {
    host,
    answer: null,
    get messages() {
      return messages;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
  return mx;
}
