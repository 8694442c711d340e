// The message story page in Chromium (Playwright, as test/web/browser.test.ts)
// for five messages sent through the real pipeline: forwarded, From
// rewritten, greylisted, refused by DMARC, partly delivered. Screenshots go to
// test/artifacts/story-*.png (docs/screenshots/ has the copies docs/admin-ui.md shows).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { listAllow } from "../../src/store/allowlist.ts";
import { createAdmin, createSession } from "../../src/store/admins.ts";
import { type StoryCase, type StoryFixture, startStoryFixture } from "../log/story-fixture.ts";
import { hasChromium, openBrowser, screenshot } from "../support/chromium.ts";


let f: StoryFixture;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!hasChromium) return;
  f = await startStoryFixture();
  const admin = await createAdmin(f.mf.appliance.store.db, "admin", "correct horse battery staple");
  const session = await createSession(f.mf.appliance.store.db, admin.id, "127.0.0.1", "test");
  const opened = await openBrowser({ width: 1100, height: 900 });
  ({ browser, page } = opened);
  await opened.context.addCookies([{ name: "mf_session", value: session.token, url: f.mf.httpUrl }]);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await f?.close();
});

/** Opens the page of the case's last event and returns the story's steps as the reader sees them. */
async function openStory(name: StoryCase): Promise<string[]> {
  await page.goto(`${f.mf.httpUrl}log/${f.sessions[name].at(-1)!.id}`);
  await screenshot(page, `story-${name.replace("_", "-")}`);
  expect(await page.isVisible("details.panel pre")).toBe(false);
  return page.locator("ol.story > li").allInnerTexts();
}

describe.skipIf(!hasChromium)("the message story page", () => {
  test("forwarded: received with TLS, authentication passes, the rule, the destination's 250", async () => {
    const steps = await openStory("forwarded");
    expect(steps[0]).toContain("✓ Received");
    expect(steps[0]).toContain("TLS TLSv1.3");
    expect(steps.join("\n")).toContain("Matched the rule hello");
    expect(steps.find((s) => s.includes("Authentication"))).toContain("DKIM pass");
    expect(steps.find((s) => s.includes("Delivery to user@dest.test"))).toMatch(/✓ Delivery to[\s\S]*MX host mx\.dest\.test[\s\S]*Answer: 250/);
    expect(steps.at(-1)).toContain("✓ Answer to the sender");
  });

  test("rewritten From: the choice and its reason", async () => {
    expect((await openStory("rewritten")).join("\n")).toContain("From rewritten to the alias: DMARC p=reject of strict.test and no aligned DKIM signature");
  });

  test("greylisted: the reason and a one-click allowlist that works", async () => {
    const steps = await openStory("greylisted");
    expect(steps.at(-2)).toContain("Greylisted: the first message from this sender");
    await page.locator("ol.story > li").nth(-2).getByRole("button", { name: "Allowlist someone@grey.test" }).click();
    await page.waitForURL(/\/lists/);
    expect(await page.textContent("body")).toContain("Allowlisted someone@grey.test");
    expect((await listAllow(f.mf.appliance.store.db)).map((a) => a.value)).toContain("someone@grey.test");
  });

  test("refused by DMARC: ✗ authentication and ✗ answer with the reason", async () => {
    const steps = await openStory("dmarc_refused");
    expect(steps.find((s) => s.includes("Authentication"))).toMatch(/✗ Authentication[\s\S]*DMARC fail for the author domain/);
    expect(steps.at(-1)).toMatch(/✗ Answer to the sender[\s\S]*fails DMARC[\s\S]*550 5\.7\.1/);
  });

  test("partly delivered: ✓ one destination, ✗ the other, and the answer says so", async () => {
    const steps = await openStory("partly_delivered");
    expect(steps.find((s) => s.includes("user@dest.test"))).toContain("✓ Delivery to");
    expect(steps.find((s) => s.includes("user@refuses.test"))).toMatch(/✗ Delivery to[\s\S]*Answer: 550 5\.1\.1 No such user here/);
    expect(steps.at(-1)).toContain("Forwarded to some destinations");
  });
});
