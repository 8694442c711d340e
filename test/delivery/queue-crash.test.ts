// The outbound queue survives a crash: a real `mailferry serve` child process
// queues a verification mail (an API request answered only after the queue row
// is committed), is killed with SIGKILL right after the answer, before its
// attempt got past the (slow) DNS lookup, and on the next start delivers the
// message exactly once. The submission port does the same through 587
// (test/submission).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { preparePrivateDataDir } from "../../src/store/data-dir.ts";
import { listQueue } from "../../src/store/deliveries.ts";
import { addDomain } from "../../src/store/domains.ts";
import { createToken } from "../../src/store/tokens.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { type ServeProcess, startServe, withDataDirDb } from "../support/serve-process.ts";
import { type Sink, startSink } from "../support/sink.ts";

let dns: DnsServer;
let sink: Sink;
let server: ServeProcess | undefined;
let token: string;
const dataDir = mkdtempSync(join(tmpdir(), "mailferry-queue-crash-"));


beforeAll(async () => {
  sink = await startSink({ host: "127.0.0.2", tls: "none" });
  // The destination's MX answers slowly: the first attempt is still resolving when the process dies.
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }], delayMs: 3_000 }, "mx.dest.test": { A: [sink.host] } });
  preparePrivateDataDir(dataDir);
  token = await withDataDirDb(dataDir, async (db) => {
    await addDomain(db, "example.test");
    return (await createToken(db, "crash", "write")).token;
  });
});

afterAll(async () => {
  await server?.kill();
  await sink?.close();
  await dns?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const start = () =>
  startServe({
    MAILFERRY_DATA_DIR: dataDir,
    MAILFERRY_HOSTNAME: "mx.example.test",
    MAILFERRY_SMTP_PORT: "0",
    MAILFERRY_HTTP_PORT: "0",
    MAILFERRY_DNS_SERVERS: dns.address,
    MAILFERRY_DNS_TIMEOUT: "10s",
    MAILFERRY_OUTBOUND_PORT: String(sink.port),
    MAILFERRY_OUTBOUND_ALLOW_PRIVATE: "true",
  });

test("kill -9 right after enqueue resolved: after the restart the message is delivered exactly once", async () => {
  server = await start();
  // A write-scope token's destination gets a verification mail (docs/aliases.md): the API answers once it is queued.
  const res = await fetch(`${server.httpUrl}/api/v1/destinations`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ address: "me@dest.test" }) });
  expect(res.status).toBeLessThan(300);
  await server.kill();
  server = undefined;

  expect(sink.messages).toEqual([]);
  const queued = await withDataDirDb(dataDir, (db) => listQueue(db));
  expect(queued.map((e) => e.recipients.map((r) => [r.address, r.status]))).toEqual([[["me@dest.test", "pending"]]]);

  dns.zones["dest.test"]!.delayMs = 0;
  server = await start();
  const [mail] = await sink.waitForMessages(1, 15_000);
  expect(mail!.rcptTo).toEqual(["me@dest.test"]);
  expect(mail!.raw.toString()).toContain("DKIM-Signature:");
  // Time for a second copy, were one to come: the next rounds find nothing due.
  await Bun.sleep(1_500);
  expect(sink.messages).toHaveLength(1);
  await server.kill();
  server = undefined;
  expect(await withDataDirDb(dataDir, (db) => listQueue(db))).toEqual([]);
}, 90_000);
