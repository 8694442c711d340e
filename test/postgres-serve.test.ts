// `mailferry serve` on PostgreSQL ([database] url, docs/operations.md,
// "PostgreSQL"): the CLI sets up a domain and an alias in a private
// PostgreSQL, the server forwards a message sent to it over real SMTP to a
// sink, and the mail log of it is in PostgreSQL, not in a file of the data
// directory (which keeps only the node's own TLS files and spool).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DATABASE_FILE, openDatabase } from "../src/store/db.ts";
import { listEvents } from "../src/store/events.ts";
import { type DnsServer, startDnsServer } from "./support/dns-server.ts";
import { freePort } from "./support/ports.ts";
import { nodeEnv, type Postgres, startPostgres } from "./support/postgres.ts";
import { type ServeProcess, startServe } from "./support/serve-process.ts";
import { type Sink, startSink } from "./support/sink.ts";
import { CLI, cleanEnv, run } from "./support/smoke.ts";
import { SmtpTalk } from "./support/smtp-client.ts";

let postgres: Postgres;
let dns: DnsServer;
let sink: Sink;
let server: ServeProcess | undefined;
let databaseUrl: string;
const dataDir = mkdtempSync(join(tmpdir(), "mailferry-postgres-serve-"));

beforeAll(async () => {
  postgres = await startPostgres();
  databaseUrl = await postgres.createDatabase();
  sink = await startSink({ host: "127.0.0.2", tls: "none" });
  dns = await startDnsServer({ "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] }, "mx.dest.test": { A: [sink.host] } });
}, 120_000);

afterAll(async () => {
  await server?.kill();
  await sink?.close();
  await dns?.close();
  await postgres?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const env = () => ({
  ...nodeEnv({ dataDir, databaseUrl, hostname: "mx.pg.test", dnsAddress: dns.address, sinkPort: sink.port }),
  MAILFERRY_GREYLIST_DELAY: "0",
});

async function cli(args: string[]): Promise<string> {
  const result = await run([...CLI, ...args], { cwd: dataDir, env: { ...cleanEnv(), ...env() }, timeoutMs: 30_000 });
  if (result.exitCode !== 0) throw new Error(`mailferry ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

test("serve with MAILFERRY_DATABASE_URL forwards a message end to end; its state and mail log are in PostgreSQL", async () => {
  await cli(["domain", "add", "pg.test"]);
  await cli(["alias", "add", "pg.test", "hello", "someone@dest.test"]);
  server = await startServe(env());

  const { talk } = await SmtpTalk.connect(server.smtpPort);
  try {
    for (const command of ["EHLO client.test", "MAIL FROM:<alice@sender.test>", "RCPT TO:<hello@pg.test>"]) expect((await talk.send(command)).code).toBe(250);
    expect((await talk.send("DATA")).code).toBe(354);
    talk.write("From: alice@sender.test\r\nTo: hello@pg.test\r\nSubject: over postgres\r\nMessage-ID: <pg-1@sender.test>\r\n\r\nhello\r\n.\r\n");
    expect((await talk.next(30_000)).code).toBe(250);
  } finally {
    talk.close();
  }
  const [copy] = await sink.waitForMessages(1, 15_000);
  expect(copy!.rcptTo).toEqual(["someone@dest.test"]);
  expect(copy!.raw.toString()).toContain("Subject: over postgres");
  expect(server.errors).toEqual([]);

  // The node's data dir has no database of its own.
  expect(existsSync(join(dataDir, DATABASE_FILE))).toBe(false);
  const store = await openDatabase(databaseUrl);
  try {
    const logged = await waitFor(async () => (await listEvents(store.db, { limit: 50 })).find((e) => e.stage === "data" && e.code === 250));
    expect(logged).toMatchObject({ message_id: "<pg-1@sender.test>", domain: "pg.test" });
  } finally {
    await store.close();
  }
}, 120_000);

test("a PostgreSQL that cannot be reached is a clear error naming it, without its password", async () => {
  const unreachable = `postgres://mailferry:s3cret@127.0.0.1:${await freePort()}/mailferry`;
  const result = await run([...CLI, "domain", "list"], { cwd: dataDir, env: { ...cleanEnv(), ...env(), MAILFERRY_DATABASE_URL: unreachable }, timeoutMs: 30_000 });
  expect(result.exitCode).toBe(1);
  expect(result.stderr).toContain("cannot use the PostgreSQL database postgres://mailferry@127.0.0.1:");
  expect(result.stderr).not.toContain("s3cret");
});

/** The first non-undefined result of `probe` within 10 s (the mail log is written in batches). */
async function waitFor<T>(probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error("not found in time");
    await Bun.sleep(100);
  }
}
