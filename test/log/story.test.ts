// The message story (src/service/story.ts) of five messages sent through the
// real pipeline (test/log/story-fixture.ts), as the function, `mailferry log
// show <id>` and GET /api/v1/log/{id}/story tell it. The page itself:
// test/web/story-browser.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { messageStory, type StoryStep } from "../../src/service/story.ts";
import { findDestination } from "../../src/store/destinations.ts";
import { signingKey } from "../../src/store/dkim-keys.ts";
import { createToken } from "../../src/store/tokens.ts";
import { CLI, run } from "../support/smoke.ts";
import { type StoryFixture, startStoryFixture } from "./story-fixture.ts";

let f: StoryFixture;
beforeAll(async () => {
  f = await startStoryFixture();
}, 60_000);
afterAll(() => f?.close());

const step = (steps: StoryStep[], title: string) => steps.find((s) => s.title.startsWith(title));
const text = (s: StoryStep | undefined) => s?.lines.join("\n") ?? "";

describe("messageStory", () => {
  test("forwarded: client and TLS, authentication in words, the rule, SRS, From kept, the signing key, the destination's answer", async () => {
    const steps = messageStory(f.sessions.forwarded);
    expect(steps.map((s) => s.title)).toEqual(["Received", "Recipient hello@example.test", "Authentication", "Forwarding choices", "Delivery to user@dest.test (for hello@example.test)", "Answer to the sender"]);
    expect(text(step(steps, "Received"))).toContain("Client 127.0.0.1, no verified host name");
    expect(text(step(steps, "Received"))).toContain("TLS TLSv1.3");
    expect(text(step(steps, "Recipient"))).toBe("Matched the rule hello");
    expect(step(steps, "Authentication")).toMatchObject({ badge: "ok", lines: ["SPF pass for signed.test", "DKIM pass", "DMARC pass for the author domain signed.test (policy reject)", "ARC chain none"] });
    const choices = text(step(steps, "Forwarding choices"));
    expect(choices).toContain("SRS applied: envelope sender SRS0=");
    expect(choices).toContain("From kept: an aligned DKIM signature carries DMARC through forwarding");
    const key = await signingKey(f.mf.appliance.store.db, "example.test");
    expect(choices).toContain(`ARC sealed by example.test (selector ${key!.selector}): the set carries this server's verdicts to the destination`);
    expect(choices).toContain("Not DKIM signed by example.test: the From is the author's, so DMARC would not align with this signature (forwarding.dkim_sign = rewritten)");
    expect(step(steps, "Delivery to")).toMatchObject({ badge: "ok" });
    expect(text(step(steps, "Delivery to"))).toMatch(/MX host mx\.dest\.test\nTLS TLSv1\.3\nNo MTA-STS policy\nAnswer: 250 2\.0\.0 .*\nTook \d+ ms/);
    expect(step(steps, "Answer to the sender")).toMatchObject({ badge: "ok", lines: ["Forwarded", "250 2.0.0 Message forwarded"] });
    expect(steps.every((s) => !s.lines.some((l) => l.includes("{")))).toBe(true);
  });

  test("rewritten From: says why (DMARC p=reject, no aligned DKIM)", () => {
    const choices = text(step(messageStory(f.sessions.rewritten), "Forwarding choices"));
    expect(choices).toContain("From rewritten to the alias: DMARC p=reject of strict.test and no aligned DKIM signature");
    expect(choices).toContain("ARC sealed by example.test");
    expect(choices).toContain("DKIM signed by example.test (selector mailferry): the From names the alias, so DMARC aligns with this signature");
  });

  test("signing facts in words: forwarding.dkim_sign = always, and an event older than those facts (one `signed` for both)", () => {
    const withDetail = (change: (detail: Record<string, unknown>) => Record<string, unknown>) =>
      f.sessions.forwarded.map((e) => (e.stage === "delivery" ? { ...e, detail: JSON.stringify(change(JSON.parse(e.detail!))) } : e));
    const choicesOf = (events: typeof f.sessions.forwarded) => text(step(messageStory(events), "Forwarding choices"));
    expect(choicesOf(withDetail((d) => ({ ...d, dkim_signed: true })))).toContain("DKIM signed by example.test (selector mailferry) as well (forwarding.dkim_sign = always)");
    const older = choicesOf(withDetail(({ signing_domain, selector, arc_sealed, dkim_signed, ...d }) => ({ ...d, signed: true })));
    expect(older).toContain("ARC sealed by this server");
    expect(older).toContain("DKIM signed by this server as well");
    expect(choicesOf(withDetail((d) => ({ ...d, signing_domain: null, arc_sealed: false, dkim_signed: false })))).toContain("Not sealed or signed (no active DKIM key for the alias domain)");
  });

  test("greylisted: the reason and a one-click allowlist of the sender", () => {
    const steps = messageStory(f.sessions.greylisted);
    const refused = step(steps, "Recipient hello@example.test refused")!;
    expect(refused).toMatchObject({ badge: "warn", action: { path: "/lists/allow", field: "allow_value", value: "someone@grey.test" } });
    expect(refused.lines[0]).toStartWith("Greylisted");
    expect(step(steps, "Answer to the sender")).toEqual({ title: "Answer to the sender", badge: "warn", lines: ["No message taken: the last recipient was answered 450 4.7.1"] });
  });

  test("refused by DMARC: authentication fails, the answer says why, the sender can be allowlisted", () => {
    const steps = messageStory(f.sessions.dmarc_refused);
    expect(step(steps, "Authentication")).toMatchObject({ badge: "fail", lines: ["SPF softfail for rejecter.test", "DKIM none (not signed)", "DMARC fail for the author domain rejecter.test (policy reject)", "ARC chain none"] });
    expect(step(steps, "Delivery to")).toBeUndefined();
    expect(step(steps, "Answer to the sender")).toMatchObject({ badge: "fail", lines: [expect.stringContaining("fails DMARC"), expect.stringMatching(/^550 5\.7\.1 Rejected by the DMARC policy of rejecter\.test/)], action: { path: "/lists/allow", value: "someone@rejecter.test" } });
  });

  test("partly delivered: one step per destination, 250 and 550, and the answer says so", () => {
    const steps = messageStory(f.sessions.partly_delivered);
    const deliveries = steps.filter((s) => s.title.startsWith("Delivery to"));
    expect(deliveries.map((s) => [s.title, s.badge])).toEqual([
      ["Delivery to user@dest.test (for split@example.test)", "ok"],
      ["Delivery to user@refuses.test (for split@example.test)", "fail"],
    ]);
    expect(text(deliveries[1])).toContain("MX host mx.refuses.test");
    expect(text(deliveries[1])).toContain("Answer: 550 5.1.1 No such user here");
    expect(step(steps, "Answer to the sender")!.lines[0]).toBe("Forwarded to some destinations; the sender is told about the others");
  });

  test("a regex rule: the rule and its captures", () => {
    const steps = messageStory(f.sessions.regex);
    expect(step(steps, "Recipient shop-books@example.test")!.lines).toEqual(["Matched the rule /^shop-([a-z]+)$/ (regex)", 'Regex captures: $1 = "books"']);
    expect(step(steps, "Delivery to user+books@dest.test")).toMatchObject({ badge: "ok" });
  });

  test("plus-addressing: the rule matched without the tag, and the tag", () => {
    const steps = messageStory(f.sessions.plus_tag);
    expect(step(steps, "Recipient hello+news@example.test")!.lines).toEqual(["Matched the rule hello", 'Plus tag "+news": the name matched without it']);
    expect(step(steps, "Delivery to user+news@dest.test")).toMatchObject({ badge: "ok" });
  });

  test("a destination waiting for confirmation: deferred, with a one-click resend of the verification mail to it", async () => {
    const steps = messageStory(f.sessions.unverified);
    const refused = step(steps, "Recipient fresh@example.test refused")!;
    expect(refused).toMatchObject({ badge: "warn", action: { label: "Resend the verification mail to new@dest.test", path: "/destinations/resend", field: "address", value: "new@dest.test" } });
    expect(refused.lines).toEqual(["Deferred: the forwarding destination is not verified yet", "450 4.1.1 fresh@example.test: forwarding destination new@dest.test is not verified yet"]);
    // The action names a destination that exists and waits, which is what the resend takes.
    expect(await findDestination(f.mf.appliance.store.db, refused.action!.value)).toMatchObject({ verified_at: null });
  });

  test("no events: no story", () => {
    expect(messageStory([])).toEqual([]);
  });
});

describe("the story outside the page", () => {
  test("mailferry log show <id> prints it in words; an unknown id is an error", async () => {
    const id = String(f.sessions.partly_delivered.at(-1)!.id);
    const env = { MAILFERRY_DATA_DIR: f.mf.dataDir };
    const shown = await run([...CLI, "log", "show", id], { cwd: f.mf.dataDir, env });
    expect(shown.exitCode).toBe(0);
    expect(shown.stdout).toContain('"story-partly" session ');
    expect(shown.stdout).toContain("✓ Delivery to user@dest.test (for split@example.test)");
    expect(shown.stdout).toContain("✗ Delivery to user@refuses.test (for split@example.test)\n    MX host mx.refuses.test");
    expect(shown.stdout).toContain("✓ Answer to the sender\n    Forwarded to some destinations");
    const json = JSON.parse((await run([...CLI, "log", "show", id, "--json"], { cwd: f.mf.dataDir, env })).stdout);
    expect(json.steps).toEqual(messageStory(f.sessions.partly_delivered));
    expect((await run([...CLI, "log", "show", "999999"], { cwd: f.mf.dataDir, env })).exitCode).toBe(1);
    expect((await run([...CLI, "log", "show"], { cwd: f.mf.dataDir, env })).exitCode).toBe(2);
  }, 30_000);

  test("GET /api/v1/log/{id}/story: the steps; 404 for an unknown event", async () => {
    const { token } = await createToken(f.mf.appliance.store.db, "story", "read");
    const get = (id: number) => fetch(`${f.mf.httpUrl}api/v1/log/${id}/story`, { headers: { authorization: `Bearer ${token}` } });
    const refused = f.sessions.dmarc_refused.at(-1)!;
    const res = await get(refused.id);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ session_id: refused.session_id, steps: messageStory(f.sessions.dmarc_refused) });
    expect((await get(999_999)).status).toBe(404);
  });
});
