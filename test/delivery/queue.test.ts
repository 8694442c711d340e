// The durable outbound queue (docs/delivery-and-authentication.md, "Outbound
// queue") over real SMTP: sinks on 127.0.0.x found through the test DNS
// server, a real relay and database, and a clock the test moves, so 5 days of
// retries take no time. The crash test (kill -9) is in queue-crash.test.ts.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/log.ts";
import { createOutbox, type Outbox, type OutboundMessage } from "../../src/delivery/outbox.ts";
import { GIVE_UP_AFTER_MS, RETRY_DELAYS_MS, retryPlan } from "../../src/delivery/retry-schedule.ts";
import { Database } from "bun:sqlite";
import { Kysely, SqliteDialect } from "kysely";
import { Migrator } from "kysely/migration";
import { adapt, openStore, type Store } from "../../src/store/db.ts";
import { migrations } from "../../src/store/migrations/index.ts";
import { deleteQueued, enqueue, listQueue, outboxDone, recordDelayNotice } from "../../src/store/deliveries.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startTestRelay } from "../support/relay.ts";
import { type Sink, type SinkMessage, startSinks } from "../support/sink.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let dns: DnsServer;
let home: Sink, flaky: Sink, hard: Sink;
let store: Store;
let outbox: Outbox;
let dir: string;
let clock = Date.UTC(2026, 11, 1, 9, 0, 0);
/** RCPT TO commands each address got at the flaky sink, and how many more it defers. */
const tries = new Map<string, number>();
const deferrals = new Map<string, number>();
const logs: Record<string, unknown>[] = [];

const mx = (domain: string, ip: string) => ({ [domain]: { MX: [{ priority: 10, exchange: `mx.${domain}` }] }, [`mx.${domain}`]: { A: [ip] } });

beforeAll(async () => {
  [home, flaky, hard] = (await startSinks([
    { host: "127.0.0.2", tls: "none" },
    {
      host: "127.0.0.3",
      tls: "none",
      onRcpt: (rcpt) => {
        tries.set(rcpt, (tries.get(rcpt) ?? 0) + 1);
        const left = deferrals.get(rcpt) ?? 0;
        deferrals.set(rcpt, left - 1);
        return left > 0 ? { code: 451, text: "4.7.1 Greylisted, please try again later" } : undefined;
      },
    },
    { host: "127.0.0.4", tls: "none", onRcpt: () => ({ code: 550, text: "5.1.1 No such user here" }) },
  ])) as [Sink, Sink, Sink];
  dns = await startDnsServer({ ...mx("home.test", home.host), ...mx("flaky.test", flaky.host), ...mx("hard.test", hard.host) });
  dir = mkdtempSync(join(tmpdir(), "mailferry-queue-"));
  store = await openStore(join(dir, "queue.db"));
  const logger = createLogger({ level: "info", format: "json", write: (line) => logs.push(JSON.parse(line)) });
  outbox = createOutbox({ db: store.db, relay: startTestRelay(dns), hostname: "mx.home.test", outboundPort: home.port, logger, now: () => clock });
});

afterAll(async () => {
  await outbox?.stop();
  await store?.close();
  await Promise.all([home, flaky, hard].map((s) => s?.close()));
  await dns?.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  for (const sink of [home, flaky, hard]) sink.messages.length = 0;
});

function submitted(to: string[], subject: string): OutboundMessage {
  const raw = Buffer.from(`From: Alias <alias@home.test>\r\nTo: ${to.join(", ")}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replaceAll(" ", "-")}@home.test>\r\n\r\nHello.\r\n`);
  return { from: "alias@home.test", to, raw, submitter: "alias@home.test" };
}

/** Moves the clock and runs what is due then, as the poll would. */
async function advance(ms: number): Promise<void> {
  clock += ms;
  await outbox.runDue();
}

const queued = async (id: number) => (await listQueue(store.db)).find((e) => e.id === id);
const noticesTo = (address: string): SinkMessage[] => home.messages.filter((m) => m.rcptTo.includes(address) && m.mailFrom === "");

describe("retry schedule (a pure function)", () => {
  test("1m, 5m, 15m, 30m, 1h, 2h, 4h, then every 4h", () => {
    const t0 = 0;
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => retryPlan(n, t0, 0))).toEqual([1, 5, 15, 30, 60, 120, 240, 240, 240].map((m) => ({ retryAt: m * MINUTE })));
    expect(RETRY_DELAYS_MS.at(-1)).toBe(4 * HOUR);
  });

  test("gives up 5 days after queueing; the last try falls on that time", () => {
    expect(GIVE_UP_AFTER_MS).toBe(5 * 24 * HOUR);
    expect(retryPlan(30, 0, GIVE_UP_AFTER_MS - HOUR)).toEqual({ retryAt: GIVE_UP_AFTER_MS });
    expect(retryPlan(31, 0, GIVE_UP_AFTER_MS)).toEqual({ giveUp: true });
  });
});

describe("outbound queue over real SMTP", () => {
  test("enqueue resolves with the row stored: envelope sender, every recipient pending", async () => {
    deferrals.set("stored@flaky.test", 1);
    const id = await outbox.enqueue(submitted(["stored@flaky.test"], "stored"));
    // A commit is on disk when it returns (FULL = 2), so a 250 after enqueue survives a power cut too.
    expect(store.sqlite!.query("PRAGMA synchronous").get()).toEqual({ synchronous: 2 });
    const row = await store.db.selectFrom("outbox").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ mail_from: "alias@home.test", submitter: "alias@home.test" });
    await outbox.runDue();
    await advance(MINUTE);
    expect(await queued(id)).toBeUndefined();
  });

  test("a 4xx is retried on the schedule (1m, then 5m) and delivered once", async () => {
    deferrals.set("later@flaky.test", 2);
    const id = await outbox.enqueue(submitted(["later@flaky.test"], "greylisted"));
    const t0 = clock;
    await outbox.runDue();
    expect(tries.get("later@flaky.test")).toBe(1);
    expect(await queued(id)).toMatchObject({ attempts: 1, next_attempt: t0 + MINUTE, last_error: "451 4.7.1 Greylisted, please try again later" });

    await advance(MINUTE - 1_000);
    expect(tries.get("later@flaky.test")).toBe(1);
    await advance(1_000);
    expect(tries.get("later@flaky.test")).toBe(2);
    expect(await queued(id)).toMatchObject({ attempts: 2, next_attempt: t0 + 6 * MINUTE });

    await advance(5 * MINUTE);
    expect(tries.get("later@flaky.test")).toBe(3);
    expect(await queued(id)).toBeUndefined();
    expect(flaky.messages.map((m) => [m.mailFrom, m.rcptTo])).toEqual([["alias@home.test", ["later@flaky.test"]]]);
    expect(noticesTo("alias@home.test")).toEqual([]);
  });

  test("a 5xx produces exactly one DSN to the submitter (RFC 3464), from the null sender", async () => {
    const id = await outbox.enqueue(submitted(["nobody@hard.test"], "refused"));
    await outbox.runDue();
    expect(await queued(id)).toBeUndefined();
    for (let i = 0; i < 3; i++) await advance(4 * HOUR);
    const dsns = noticesTo("alias@home.test");
    expect(dsns).toHaveLength(1);
    const text = dsns[0]!.raw.toString();
    expect(text).toContain("Content-Type: multipart/report; report-type=delivery-status");
    expect(text).toContain("Final-Recipient: rfc822; nobody@hard.test");
    expect(text).toContain("Action: failed");
    expect(text).toContain("Status: 5.1.1");
    expect(text).toContain("Subject: refused");
    expect(text).not.toContain("Hello.");
  });

  test("a DSN or notice itself (no submitter) that fails gets no DSN", async () => {
    await outbox.enqueue({ from: "", to: ["nobody@hard.test"], raw: Buffer.from("From: MAILER-DAEMON@mx.home.test\r\nSubject: a notice\r\n\r\nx\r\n") });
    await outbox.runDue();
    await advance(HOUR);
    expect(home.messages).toEqual([]);
    expect(hard.connections).toBeGreaterThan(0);
  });

  test("a message an admin deleted during its attempt gets no DSN; a second delay notice is never queued", async () => {
    // Queued in the table only: no attempt runs while the test plays both sides.
    const id = await enqueue(store.db, submitted(["gone@hard.test"], "deleted"), clock);
    const before = (await listQueue(store.db)).length;
    expect(await deleteQueued(store.db, id)).toBe(true);
    await outboxDone(store.db, id, { from: "", to: ["alias@home.test"], raw: Buffer.from("Subject: DSN\r\n\r\nx\r\n") });
    expect((await listQueue(store.db)).length).toBe(before - 1);

    const kept = await enqueue(store.db, submitted(["twice@flaky.test"], "twice"), clock);
    const notice = { from: "", to: ["alias@home.test"], raw: Buffer.from("Subject: delayed\r\n\r\nx\r\n") };
    await recordDelayNotice(store.db, kept, notice);
    await recordDelayNotice(store.db, kept, notice);
    expect((await listQueue(store.db)).filter((e) => e.recipients.some((r) => r.address === "alias@home.test"))).toHaveLength(1);
    await deleteQueued(store.db, kept);
    await outbox.runDue();
    home.messages.length = 0;
  });

  test("a partial delivery retries only the recipient that was deferred", async () => {
    deferrals.set("partial@flaky.test", 1);
    const id = await outbox.enqueue(submitted(["friend@home.test", "partial@flaky.test"], "partial"));
    await outbox.runDue();
    expect((await queued(id))?.recipients.map((r) => [r.address, r.status])).toEqual([
      ["friend@home.test", "delivered"],
      ["partial@flaky.test", "pending"],
    ]);
    await advance(MINUTE);
    expect(await queued(id)).toBeUndefined();
    expect(home.messages.filter((m) => m.rcptTo.includes("friend@home.test"))).toHaveLength(1);
    expect(flaky.messages.filter((m) => m.rcptTo.includes("partial@flaky.test"))).toHaveLength(1);
  });

  test("still undelivered after 4 hours: one delay notice; after 5 days: one DSN, and the message leaves the queue", async () => {
    deferrals.set("down@flaky.test", Number.POSITIVE_INFINITY);
    const t0 = clock;
    const id = await outbox.enqueue(submitted(["down@flaky.test"], "stuck"));
    await outbox.runDue();
    /** Runs the next attempt, as the poll would when it falls due. */
    const nextAttempt = async () => advance((await queued(id))!.next_attempt - clock);
    // 1m, 5m, 15m, 30m, 1h and 2h: the 7th try is 3h51m after queueing, the next 4h later.
    for (let i = 0; i < 6; i++) await nextAttempt();
    expect(clock).toBe(t0 + 231 * MINUTE);
    expect(tries.get("down@flaky.test")).toBe(7);
    expect(noticesTo("alias@home.test")).toEqual([]);

    // A poll at the 4-hour mark, with no attempt due: the notice goes anyway.
    await advance(t0 + 4 * HOUR - clock);
    expect(tries.get("down@flaky.test")).toBe(7);
    const [delay] = noticesTo("alias@home.test");
    expect(delay?.raw.toString()).toContain("Action: delayed");
    expect(delay?.raw.toString()).toContain("Will-Retry-Until:");
    expect(delay?.raw.toString()).toContain("Status: 4.7.1");

    // Every 4h to the 5-day mark, the last try at that mark: no second delay notice, then the DSN.
    for (let step = 0; step < 100 && (await queued(id)); step++) await nextAttempt();
    expect(clock).toBe(t0 + GIVE_UP_AFTER_MS);
    expect(tries.get("down@flaky.test")).toBe(7 + Math.ceil((GIVE_UP_AFTER_MS - 231 * MINUTE) / (4 * HOUR)));
    const notices = noticesTo("alias@home.test").map((m) => /Action: (\w+)/.exec(m.raw.toString())?.[1]);
    expect(notices).toEqual(["delayed", "failed"]);
    expect(logs.some((l) => l.event === "outbox.gave_up" && l.id === id)).toBe(true);
  });
});

test("migration 020 keeps what the old outbox held: each queued notice with its recipient, pending", async () => {
  const path = join(dir, "before-020.db");
  const raw = new Database(path, { create: true, strict: true });
  const old = new Kysely<unknown>({ dialect: new SqliteDialect({ database: adapt(raw) }) });
  const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < "020"));
  expect((await new Migrator({ db: old, provider: { getMigrations: async () => before } }).migrateToLatest()).error).toBeUndefined();
  raw.run("INSERT INTO outbox (rcpt_to, raw, attempts, next_attempt, last_error, created_at) VALUES ('bounce@sender.test', X'41', 2, 5, '451 later', 1)");
  await old.destroy();

  const upgraded = await openStore(path);
  try {
    expect(await listQueue(upgraded.db)).toEqual([
      { id: 1, mail_from: "", submitter: null, attempts: 2, next_attempt: 5, last_error: "451 later", created_at: 1, delay_notice_at: null, recipients: [{ address: "bounce@sender.test", status: "pending", reply: null, remoteMta: null }] },
    ]);
  } finally {
    await upgraded.close();
  }
});
