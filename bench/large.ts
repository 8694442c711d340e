// Large-message benchmark (issue 17): mailferry (`serve`, from source) takes
// N parallel messages of SIZE bytes to a forwarding alias, then N to a webhook
// alias, and its peak memory is measured for each round: RSS sampled every
// 50 ms (and the kernel's high-water mark, VmHWM) of the one process. The
// destination (an smtp-server sink) and the webhook endpoint discard what
// they receive, so only mailferry's memory is measured.
// Run: bench/run large [--messages 10] [--size 47185920]
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SMTPServer } from "smtp-server";
import { importAliases } from "../src/store/aliases.ts";
import { DATABASE_FILE, openStore } from "../src/store/db.ts";
import { preparePrivateDataDir } from "../src/store/data-dir.ts";
import { addDomain } from "../src/store/domains.ts";
import { startDnsServer } from "../test/support/dns-server.ts";
import { startServe } from "../test/support/serve-process.ts";
import { SmtpTalk } from "../test/support/smtp-client.ts";

const MB = 1024 * 1024;
const { values } = parseArgs({ options: { messages: { type: "string", default: "10" }, size: { type: "string", default: String(45 * MB) } } });
const MESSAGES = Number(values.messages);
const SIZE = Number(values.size);

// A destination that reads each message to the end and keeps only a digest.
const received: string[] = [];
const sink = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  size: 100 * MB,
  logger: false,
  onData(stream, _session, callback) {
    const hash = createHash("sha256");
    stream.on("data", (chunk: Buffer) => hash.update(chunk));
    stream.on("end", () => (received.push(hash.digest("hex")), callback()));
  },
});
await new Promise<void>((resolve) => sink.listen(0, "127.0.0.2", resolve));
const sinkPort = (sink.server.address() as { port: number }).port;
const hook = Bun.serve({
  hostname: "127.0.0.3",
  port: 0,
  maxRequestBodySize: 2048 * MB,
  async fetch(req) {
    for await (const _ of req.body as unknown as AsyncIterable<Uint8Array>);
    received.push("webhook");
    return new Response("ok");
  },
});
const dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: ["127.0.0.2"] }, "hooks.test": { A: ["127.0.0.3"] } });

const dataDir = mkdtempSync(join(tmpdir(), "mailferry-bench-large-"));
preparePrivateDataDir(dataDir);
const store = await openStore(join(dataDir, DATABASE_FILE));
await addDomain(store.db, "big.test");
await importAliases(store.db, "big.test", `forward-email=fwd:someone@dest.test,hook:http://hooks.test:${hook.port}/h`, { apply: true, allowPrivateWebhooks: true });
await store.close();

const server = await startServe({
  MAILFERRY_DATA_DIR: dataDir,
  MAILFERRY_HOSTNAME: "mx.big.test",
  MAILFERRY_SMTP_PORT: "0",
  MAILFERRY_HTTP_PORT: "0",
  MAILFERRY_DNS_SERVERS: dns.address,
  MAILFERRY_OUTBOUND_PORT: String(sinkPort),
  MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true",
  MAILFERRY_WEBHOOK_ALLOW_PRIVATE: "true",
  MAILFERRY_WEBHOOK_TIMEOUT: "300s",
  MAILFERRY_GREYLIST_DELAY: "0",
  MAILFERRY_VERIFY_DESTINATIONS: "false",
  MAILFERRY_LIMITS_CONNECTIONS_PER_HOUR: "1000000",
});
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.proc.pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

/** A message of about SIZE bytes: a short text part and a base64 attachment of random bytes. */
function largeMessage(n: number): Buffer {
  const base64 = randomBytes(Math.floor((SIZE * 57) / 78)).toString("base64").replace(/.{76}/g, "$&\r\n");
  const head = `From: Alice <alice@sender.test>\r\nTo: someone@big.test\r\nSubject: large ${n}\r\nMessage-ID: <large-${n}-${Date.now()}@sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nlarge ${n}\r\n--b1\r\nContent-Type: application/octet-stream; name="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n`;
  return Buffer.from(`${head}${base64}\r\n--b1--\r\n`);
}

async function send(to: string, raw: Buffer): Promise<number> {
  const { talk } = await SmtpTalk.connect(server.smtpPort);
  try {
    for (const command of ["EHLO client.test", "MAIL FROM:<alice@sender.test>", `RCPT TO:<${to}>`, "DATA"]) await talk.send(command);
    talk.write(raw);
    talk.write(".\r\n");
    return (await talk.next(600_000)).code;
  } finally {
    talk.close();
  }
}

async function round(to: string, messages: Buffer[]) {
  const idle = rssMb();
  let peak = idle;
  const timer = setInterval(() => (peak = Math.max(peak, rssMb())), 50);
  const started = performance.now();
  const codes = await Promise.all(messages.map((raw) => send(to, raw)));
  clearInterval(timer);
  return { to, messages: messages.length, accepted: codes.filter((c) => c === 250).length, seconds: Math.round(performance.now() - started) / 1000, idleRssMb: Math.round(idle), peakRssMb: Math.round(Math.max(peak, rssMb())) };
}

const messages = Array.from({ length: MESSAGES }, (_, n) => largeMessage(n));
const results = { size: SIZE, forward: await round("fwd@big.test", messages), webhook: await round("hook@big.test", messages), peakRssMbHighWater: Math.round(server.peakRssMb()), errors: server.errors };
console.log(JSON.stringify(results, null, 2));
writeFileSync(join(import.meta.dir, "results", `large-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), JSON.stringify(results, null, 2) + "\n");

await server.kill();
sink.close();
hook.stop(true);
await dns.close();
rmSync(dataDir, { recursive: true, force: true });
