import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store } from "../../src/store/db.ts";
import { housekeeping } from "../../src/store/housekeeping.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 25);
let dir: string;
let store: Store;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mailferry-housekeeping-"));
  store = await openStore(join(dir, "t.db"));
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test("expired rows go, current ones stay; batches stop at the time budget and resume", async () => {
  const db = store.db;
  await db.insertInto("fingerprints").values([{ id: "old", first_seen: NOW - 9 * DAY, last_seen: NOW - 8 * DAY }, { id: "new", first_seen: NOW - DAY, last_seen: NOW - DAY }]).execute();
  await db.insertInto("delivered").values({ fingerprint: "old", target: "a@x.test", at: NOW - 8 * DAY }).execute();
  await db.insertInto("greylist").values([{ key: "a|b", first_seen: NOW - 40 * DAY, passed_at: NOW - 40 * DAY, last_seen: NOW - 31 * DAY }, { key: "c|d", first_seen: NOW, passed_at: null, last_seen: NOW }]).execute();
  await db.insertInto("greylist_senders").values([{ sender_key: "gone.test", passed_at: NOW - 40 * DAY, last_seen: NOW - 31 * DAY }, { sender_key: "seen.test", passed_at: NOW - 40 * DAY, last_seen: NOW - DAY }]).execute();
  await db.insertInto("denylist").values([
    { kind: "ip", value: "192.0.2.1", source: "auto", expires_at: NOW - 1, created_at: NOW - 30 * DAY },
    { kind: "ip", value: "192.0.2.2", source: "admin", expires_at: null, created_at: NOW - 300 * DAY },
  ]).execute();
  await db.insertInto("login_failures").values([{ key: "ip:192.0.2.9|admin", count: 5, window_start: NOW - 2 * DAY }, { key: "ip:192.0.2.9|other", count: 1, window_start: NOW - 60_000 }]).execute();
  await db.insertInto("acme_challenges").values([{ token: "left", key_authorization: "left.x", created_at: NOW - 2 * DAY }, { token: "pending", key_authorization: "pending.x", created_at: NOW - 60_000 }]).execute();
  const event = (at: number) => ({ at, session_id: "s", remote_ip: "127.0.0.1", stage: "connect" as const, code: 220, enhanced: "2.0.0", text: "x", mail_from: null, recipients: null, domain: null, message_id: null, subject: null, headers: null, detail: null });
  await db.insertInto("events").values([...Array.from({ length: 30 }, () => event(NOW - 8 * DAY)), event(NOW - DAY)]).execute();

  const first = await housekeeping(db, { now: NOW, eventRetentionMs: 7 * DAY, batch: 10, budgetMs: 0 });
  // No time budget at all: the run stops before its first batch.
  expect(Object.values(first).reduce((a, b) => a + b, 0)).toBe(0);
  const removed = await housekeeping(db, { now: NOW, eventRetentionMs: 7 * DAY, batch: 10, budgetMs: 10_000 });
  expect(removed).toMatchObject({ fingerprints: 1, greylist: 1, greylist_senders: 1, denylist: 1, login_failures: 1, acme_challenges: 1, events: 30 });
  expect((await db.selectFrom("acme_challenges").select("token").execute()).map((r) => r.token)).toEqual(["pending"]);
  expect((await db.selectFrom("login_failures").select("key").execute()).map((r) => r.key)).toEqual(["ip:192.0.2.9|other"]);
  expect((await db.selectFrom("fingerprints").select("id").execute()).map((r) => r.id)).toEqual(["new"]);
  expect(await db.selectFrom("delivered").selectAll().execute()).toEqual([]);
  expect((await db.selectFrom("greylist").select("key").execute()).map((r) => r.key)).toEqual(["c|d"]);
  expect((await db.selectFrom("greylist_senders").select("sender_key").execute()).map((r) => r.sender_key)).toEqual(["seen.test"]);
  expect((await db.selectFrom("denylist").select("value").execute()).map((r) => r.value)).toEqual(["192.0.2.2"]);
  expect(await db.selectFrom("events").select("id").execute()).toHaveLength(1);
});

test("the mail log is capped by count as well as age: the newest max_events stay", async () => {
  const db = store.db;
  await db.deleteFrom("events").execute();
  const event = (at: number) => ({ at, session_id: "flood", remote_ip: "127.0.0.1", stage: "rcpt" as const, code: 550, enhanced: "5.7.1", text: "x", mail_from: null, recipients: null, domain: null, message_id: null, subject: null, headers: null, detail: null });
  await db.insertInto("events").values(Array.from({ length: 25 }, (_, i) => event(NOW - 1000 + i))).execute();
  const removed = await housekeeping(db, { now: NOW, eventRetentionMs: 7 * DAY, maxEvents: 10, batch: 4, budgetMs: 10_000 });
  expect(removed.events).toBe(15);
  const kept = await db.selectFrom("events").select("at").orderBy("at").execute();
  expect(kept.map((r) => r.at)).toEqual(Array.from({ length: 10 }, (_, i) => NOW - 1000 + 15 + i));
});
