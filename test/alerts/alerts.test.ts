// Alerts with real parts (docs/operations.md, "Alerts"): a destination sink
// refusing copies with 550 5.7.26 raises two alerts that arrive once by
// e-mail at an admin sink and at a local webhook and ntfy server, then a
// "resolved" notice each when the refusals have left the 15-minute window.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { planNotices, REPEAT_AFTER_MS } from "../../src/alerts/decide.ts";
import { destinationConditions, dnsblConditions, dnsblKey, serverConditions } from "../../src/alerts/triggers.ts";
import { createAdmin, createSession } from "../../src/store/admins.ts";
import { ALERTS_WEBHOOK_SECRET_FILE } from "../../src/store/secrets.ts";
import { createToken } from "../../src/store/tokens.ts";
import type { Alert } from "../../src/store/schema.ts";
import type { TestMailferry } from "../support/mailferry.ts";
import type { Sink } from "../support/sink.ts";
import type { HttpCollector } from "../support/http-collector.ts";
import { type AlertSetup, startAlertSetup } from "./alert-setup.ts";
import { sendMail } from "../support/smtp-client.ts";
import { waitFor } from "../support/wait.ts";

let setup: AlertSetup;
let mf: TestMailferry;
let admin: Sink;
let http: HttpCollector;

beforeAll(async () => {
  setup = await startAlertSetup({
    aliases: "forward-email=hello:user@dest.test",
    destination: { onRcpt: () => ({ code: 550, text: "5.7.26 Unauthenticated email from sender.test is not accepted due to its DMARC policy" }) },
    env: { MAILFERRY_ALERTS_DESTINATION_FAILURES: "2", MAILFERRY_ALERTS_AUTH_REJECTIONS: "2" },
  });
  ({ mf, admin, http } = setup);
});
afterAll(() => setup?.close());

// Unfolded (RFC 5322 §2.2.3): a long Subject is folded over lines.
const subjects = () => admin.messages.map((m) => /^Subject: (.*(?:\r\n[ \t].*)*)/m.exec(m.raw.toString())?.[1]?.replace(/\r\n/g, "")).sort();
const hooks = () => http.json<Record<string, string>>("/hook");
const ntfys = () => http.requests.filter((p) => p.path === "/ntfy/mailferry");

describe("a destination refusing copies for authentication (550 5.7.26)", () => {
  test("raises two alerts, sent once on each channel", async () => {
    for (let i = 0; i < 2; i++) {
      await sendMail(mf.smtpPort, { from: "alice@sender.test", to: ["hello@example.test"], subject: `copy ${i}` }).catch(() => {});
    }
    await admin.waitForMessages(2, 15_000);
    await waitFor(() => hooks().length >= 2 && ntfys().length >= 2, 10_000);
    expect(subjects()).toEqual(["[mailferry] Alert: dest.test is deferring or refusing forwarded mail", "[mailferry] Alert: dest.test refuses forwarded mail for authentication"]);
    expect(admin.messages[0]!.raw.toString()).toContain("DKIM-Signature:");
    expect(admin.messages[0]!.mailFrom).toBe("");
    const key = readFileSync(join(mf.dataDir, ALERTS_WEBHOOK_SECRET_FILE), "utf8").trim();
    for (const post of http.requests.filter((p) => p.path === "/hook")) expect(post.headers.get("x-webhook-signature")).toBe(createHmac("sha256", key).update(post.body).digest("hex"));
    expect(hooks().map((h) => `${h.event} ${h.key}`).sort()).toEqual(["alert.started auth_rejections:dest.test", "alert.started destination_failures:dest.test"]);
    expect(ntfys().map((p) => p.headers.get("priority"))).toEqual(["high", "high"]);
    expect(ntfys().map((p) => p.headers.get("title")).sort()[1]).toBe("mailferry Alert: dest.test refuses forwarded mail for authentication");
    // Further checks while it lasts send nothing more.
    await Bun.sleep(2500);
    expect(admin.messages.length).toBe(2);
    expect(http.requests.length).toBe(4);
  }, 40_000);

  test("`alerts list` and GET /api/v1/alerts show them while they last, alike", async () => {
    const proc = Bun.spawnSync([process.execPath, join(import.meta.dir, "../../src/main.ts"), "alerts", "list", "--json", "--data-dir", mf.dataDir]);
    const listed = JSON.parse(proc.stdout.toString()) as { key: string; resolved_at: string | null }[];
    expect(listed.map((a) => [a.key, a.resolved_at]).sort()).toEqual([["auth_rejections:dest.test", null], ["destination_failures:dest.test", null]]);
    const { token } = await createToken(mf.appliance.store.db, "alerts-reader", "read");
    const res = await fetch(`${mf.httpUrl}api/v1/alerts`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ items: listed });
    expect((await fetch(`${mf.httpUrl}api/v1/alerts`)).status).toBe(401);
  });

  test("the dashboard lists them", async () => {
    const db = mf.appliance.store.db;
    const session = await createSession(db, (await createAdmin(db, "admin", "correct horse battery staple")).id, "127.0.0.1", "test");
    const page = await (await fetch(mf.httpUrl, { headers: { cookie: `mf_session=${session.token}` } })).text();
    expect(page).toContain('id="alerts"');
    expect(page).toContain("dest.test refuses forwarded mail for authentication");
  });

  test("once the refusals are older than 15 minutes, each alert is resolved, once", async () => {
    await mf.appliance.store.db.updateTable("events").set((eb) => ({ at: eb("at", "-", 16 * 60_000) })).execute();
    await admin.waitForMessages(4, 15_000);
    await waitFor(() => hooks().length >= 4 && ntfys().length >= 4, 10_000);
    expect(subjects().filter((s) => s!.includes("Resolved")).length).toBe(2);
    expect(hooks().slice(2).map((h) => h.event)).toEqual(["alert.resolved", "alert.resolved"]);
    expect(ntfys().slice(2).map((p) => p.headers.get("priority"))).toEqual(["default", "default"]);
    await Bun.sleep(2500);
    expect(admin.messages.length).toBe(4);
    expect(http.requests.length).toBe(8);
  }, 40_000);
});

describe("when notices are due (pure)", () => {
  const condition = { key: "destination_failures:gmail.com", kind: "destination_failures", title: "t", detail: "d" };
  const stored = (lastSent: number, resolved: number | null = null): Alert => ({ key: condition.key, kind: condition.kind, title: "t", detail: "d", started_at: 0, last_sent_at: lastSent, resolved_at: resolved });

  test("started once, repeated after a day, resolved when gone, started again after", () => {
    expect(planNotices([], [condition], 1000).map((n) => n.kind)).toEqual(["started"]);
    expect(planNotices([stored(1000)], [condition], 1000 + REPEAT_AFTER_MS - 1)).toEqual([]);
    expect(planNotices([stored(1000)], [condition], 1000 + REPEAT_AFTER_MS).map((n) => [n.kind, n.alert.startedAt])).toEqual([["repeated", 0]]);
    expect(planNotices([stored(1000)], [], 2000).map((n) => n.kind)).toEqual(["resolved"]);
    expect(planNotices([stored(1000, 2000)], [], 3000)).toEqual([]);
    expect(planNotices([stored(1000, 2000)], [condition], 3000).map((n) => n.kind)).toEqual(["started"]);
  });

  test("destination answers count by reason and status code per domain, not by reply text", () => {
    const f = (target: string, reason: "deferred_by_destination" | "refused_by_destination", enhanced: string) => ({ target, reason, enhanced });
    const failures = [f("a@gmail.com", "deferred_by_destination", "4.7.28"), f("b@Gmail.com", "refused_by_destination", "5.7.26"), f("c@other.test", "refused_by_destination", "5.1.1")];
    expect(destinationConditions(failures, { failures: 2, authRejections: 1 }).map((c) => c.key)).toEqual(["destination_failures:gmail.com", "auth_rejections:gmail.com"]);
    expect(destinationConditions([f("c@other.test", "refused_by_destination", "5.7.1")], { failures: 2, authRejections: 1 })).toEqual([]);
  });

  test("a DNSBL answer of 127.255.255.x (query refused) is no listing; a failed lookup keeps a lasting alert", () => {
    const a = (found: string[] | null) => [{ ip: "192.0.2.1", zone: "zen.example", found }];
    const key = dnsblKey("zen.example", "192.0.2.1");
    expect(dnsblConditions(a(["127.0.0.4"]), new Set()).map((c) => c.key)).toEqual([key]);
    expect(dnsblConditions(a(["127.255.255.254"]), new Set())).toEqual([]);
    expect(dnsblConditions(a([]), new Set([key]))).toEqual([]);
    expect(dnsblConditions(a(null), new Set([key])).map((c) => c.key)).toEqual([key]);
    expect(dnsblConditions(a(null), new Set())).toEqual([]);
  });

  test("ACME failing in a row raises an alert at the threshold; the self-signed certificate never expires for alerts", () => {
    const facts = { certificateNotAfter: null, acmeFailures: 2, freeBytes: 10 ** 12, dataDir: "/d", outboxWaiting: 0 };
    const limits = { certificateDays: 14, acmeFailures: 3, diskFree: 1, outboxSize: 50 };
    expect(serverConditions(facts, limits, 0)).toEqual([]);
    expect(serverConditions({ ...facts, acmeFailures: 3 }, limits, 0).map((c) => c.key)).toEqual(["acme_failures"]);
    expect(serverConditions({ ...facts, certificateNotAfter: 15 * 86_400_000 }, limits, 0)).toEqual([]);
    expect(serverConditions({ ...facts, certificateNotAfter: 13 * 86_400_000 }, limits, 0).map((c) => c.key)).toEqual(["certificate_expiry"]);
  });
});
