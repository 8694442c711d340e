// Decisions carry their reason, and what is counted comes from it: rewording
// every reply text leaves the daily stats (the dashboard) and the metrics as
// they were. Every reason is documented in docs/architecture.md.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authDecision, type AuthResults } from "../src/auth/inbound.ts";
import { dataAnswer } from "../src/delivery/outcome.ts";
import { type Decision, decision, destinationReason, REASONS } from "../src/mail/decision.ts";
import { reply } from "../src/mail/reply.ts";
import { createMetrics } from "../src/metrics/index.ts";
import { denyDecision, greylistDecision } from "../src/policy/abuse.ts";
import { scannerDown, scanResult } from "../src/policy/scan.ts";
import { contentDecision } from "../src/smtp/content.ts";
import { ACCEPT_CONNECT, ACCEPT_DROPPED, ACCEPT_RECIPIENT, ACCEPT_SENDER, paramsDecision, recipientLimitDecision, senderSyntaxDecision, sizeDecision } from "../src/smtp/hooks.ts";
import { openStore } from "../src/store/db.ts";
import { mailLogEvent, writeEvents } from "../src/store/events.ts";
import type { EventStage, NewEvent } from "../src/store/schema.ts";
import { dailySeries } from "../src/store/stats.ts";

const failingAuth = { spf: "fail", dkim: "none", dmarc: "fail", dmarcPolicy: "reject", dmarcPct: 100, fromDomain: "sender.test", alignedDkim: false } as AuthResults;
const rspamd = (action: string) => scanResult({ action, score: 20, requiredScore: 15, symbols: [], message: null });
const target = (code: number) => ({ target: "a@x.test", originalRecipient: "hello@example.test", reply: reply(code, `${String(code)[0]}.0.0`, "destination says"), remoteMta: null });
const message = { head: Buffer.alloc(0), body: { bytes: Buffer.alloc(0) }, size: 0, oversized: true, headers: [], headerBlock: "", bodySha256: "", outliving: [] };

/** Decisions as the code makes them, at the stage that makes them. */
const decided: [EventStage, Decision][] = [
  ["connect", ACCEPT_CONNECT],
  ["connect", denyDecision({ kind: "ip", value: "192.0.2.1", reason: "" })],
  ["mail", ACCEPT_SENDER],
  ["mail", senderSyntaxDecision("not an address")!],
  ["mail", paramsDecision({ FOO: true }, new Set())!],
  ["rcpt", ACCEPT_RECIPIENT],
  ["rcpt", recipientLimitDecision(50)!],
  ["rcpt", greylistDecision(undefined, "192.0.2.1|example.test", 0, 60_000).deferral!],
  ["data", sizeDecision(message, 10)!],
  ["data", contentDecision([{ name: "from", value: "a@sender.test" }], true)!],
  ["data", contentDecision([], false)!],
  ["data", authDecision(failingAuth)!],
  ["data", rspamd("reject").refusal!],
  ["data", rspamd("soft reject").refusal!],
  ["data", scannerDown(new Error("down"), false).refusal!],
  ["data", ACCEPT_DROPPED],
  ["data", dataAnswer([target(250)], 0)],
  ["data", dataAnswer([target(250), target(550)], 0)],
  ["data", dataAnswer([target(550)], 0)],
  ["data", dataAnswer([target(451)], 0)],
  ...[250, 451, 550].map((code): [EventStage, Decision] => ["delivery", decision(target(code).reply, destinationReason(target(code).reply, false))]),
  ...[250, 550].map((code): [EventStage, Decision] => ["delivery", decision(target(code).reply, destinationReason(target(code).reply, true))]),
];

const events = (reword: (text: string) => string): NewEvent[] =>
  decided.map(([stage, d], i) =>
    mailLogEvent({ at: Date.now(), sessionId: `s${i}`, remoteIp: "192.0.2.1", stage, decision: { ...d, reply: { ...d.reply, text: reword(d.reply.text) } }, mailFrom: "a@sender.test", recipients: ["hello@example.test"], detail: {} }),
  );

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The dashboard's daily counts after writing these events. */
async function dailyCounts(list: NewEvent[]) {
  const dir = mkdtempSync(join(tmpdir(), "mailferry-reasons-"));
  dirs.push(dir);
  const store = await openStore(join(dir, "test.db"));
  try {
    await writeEvents(store.db, list);
    return (await dailySeries(store.db, 1)).series;
  } finally {
    await store.close();
  }
}

function metricsText(list: NewEvent[]): string {
  const metrics = createMetrics({ startedAt: 0, dnsQueries: () => 0, now: () => 0 });
  for (const e of list) metrics.observeEvent(e);
  return metrics.render();
}

describe("reasons, not reply text, are counted", () => {
  test("rewording every reply leaves the dashboard's daily counts and the metrics unchanged", async () => {
    const original = events((text) => text);
    const reworded = events(() => "x");
    const counts = await dailyCounts(original);
    // Every category is reached, so the comparison below is not vacuous.
    for (const [category, series] of Object.entries(counts)) expect({ category, count: series[0] }).not.toEqual({ category, count: 0 });
    expect(await dailyCounts(reworded)).toEqual(counts);
    expect(metricsText(reworded)).toBe(metricsText(original));
    expect(metricsText(original)).toContain('mailferry_smtp_replies_total{stage="rcpt",class="4xx",code="450",reason="greylisted"} 1');
  });

  test("GTUBE and a spam verdict count as spam; a destination's own 554 5.7.1 does not", async () => {
    const spam = (await dailyCounts(events((t) => t))).spam[0];
    expect(spam).toBe(2);
    const destination554 = mailLogEvent({ at: Date.now(), sessionId: "d", remoteIp: "192.0.2.1", stage: "data", decision: dataAnswer([{ ...target(554), reply: reply(554, "5.7.1", "spam") }], 0), mailFrom: "", recipients: ["hello@example.test"], detail: {} });
    expect((await dailyCounts([destination554])).spam[0]).toBe(0);
  });

  test("every reason is documented in docs/architecture.md, with its stage and a typical reply", () => {
    const doc = readFileSync(join(import.meta.dir, "..", "docs", "architecture.md"), "utf8");
    const section = doc.slice(doc.indexOf("## Reasons"));
    const rows = new Set([...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]));
    expect([...REASONS].filter((r) => !rows.has(r))).toEqual([]);
    expect([...rows].filter((r) => !(REASONS as readonly string[]).includes(r!))).toEqual([]);
  });
});
