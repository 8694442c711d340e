// A newcomer's first run in Chromium (playwright-core driving Debian's
// Chromium): set-up → the dashboard's "Getting started" steps → add a domain →
// its DNS records with live ✓/✗ → add an alias → "Send a test message", whose
// page shows the destination MX's reply; the sink on loopback received the
// message DKIM-signed (checked by dkimpy against the published record).
// Screenshots go to test/artifacts/ (git-ignored; docs/screenshots/ has copies).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { hasChromium, openBrowser, screenshot } from "../support/chromium.ts";
import { type DnsServer, publishZoneLines, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSinks } from "../support/sink.ts";

const PYTHON = "/usr/bin/python3";
const hasDkimpy = existsSync(PYTHON) && Bun.spawnSync([PYTHON, "-c", "import dkim"]).exitCode === 0;
if (!hasDkimpy) console.warn("\n*** python3-dkim is NOT installed: the first-run browser test is SKIPPED. Install it: apt-get install python3-dkim ***\n");

const PASSWORD = "correct horse battery staple";

let dns: DnsServer;
let accepting: Sink;
let refusing: Sink;
let mf: TestMailferry;
let browser: Browser;
let page: Page;
let dir: string;

beforeAll(async () => {
  if (!hasChromium || !hasDkimpy) return;
  dir = mkdtempSync(join(tmpdir(), "mailferry-first-run-"));
  [accepting, refusing] = (await startSinks([{ host: "127.0.0.2" }, { host: "127.0.0.3", onRcpt: () => ({ code: 550, text: "5.1.1 no such mailbox here" }) }])) as [Sink, Sink];
  dns = await startDnsServer({
    // The newcomer published the MX already, nothing else yet.
    "newcomer.test": { MX: [{ priority: 10, exchange: TEST_HOSTNAME }] },
    "inbox.test": { MX: [{ priority: 10, exchange: "mx.inbox.test" }] },
    "mx.inbox.test": { A: ["127.0.0.2"] },
    "refuse.test": { MX: [{ priority: 10, exchange: "mx.refuse.test" }] },
    "mx.refuse.test": { A: ["127.0.0.3"] },
  });
  mf = await startMailferry({ dns, env: { MAILFERRY_OUTBOUND_PORT: String(accepting.port) } });
  ({ browser, page } = await openBrowser());
}, 60_000);

afterAll(async () => {
  if (!hasChromium || !hasDkimpy) return;
  await browser?.close();
  await mf?.stop();
  await dns?.close();
  await Promise.all([accepting?.close(), refusing?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

/** The browser's document in functions Playwright runs in the page (serialized: no closures; the project has no DOM typings). */
type InPage = { document: { querySelectorAll(s: string): { length: number } } };
const url = (path: string) => `${mf.httpUrl}${path.replace(/^\//, "")}`;
const shot = (name: string) => screenshot(page, name);
const text = async (selector: string) => (await page.textContent(selector))?.replace(/\s+/g, " ").trim();
/** The "Getting started" steps as shown: [mark, title]. */
const steps = () => page.$$eval("#getting-started li", (lis) => lis.map((li) => [li.children[0]!.textContent!.trim(), li.children[1]!.textContent!.trim()]));
/** The test message's result rows: mark, destination, answer, answered by. */
const results = () => page.$$eval("#test-report tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent!.trim())));

/** dkimpy's verdict on a message, with DNS answered from the test DNS server's TXT records. */
function dkimpyVerifies(raw: Buffer): { ok: boolean; domain: string } {
  const file = join(dir, "message.eml");
  writeFileSync(file, raw);
  const records = Object.fromEntries(Object.entries(dns.zones).filter(([, r]) => r.TXT).map(([name, r]) => [name, r.TXT!.map((t) => (Array.isArray(t) ? t.join("") : t)).join("")]));
  const script = `
import json, sys, dkim
records = json.loads(sys.argv[2])
def dnsfunc(name, timeout=5):
    value = records.get(name.decode().rstrip(".").lower())
    return value.encode() if value else None
d = dkim.DKIM(open(sys.argv[1], "rb").read())
print(json.dumps({"ok": bool(d.verify(dnsfunc=dnsfunc)), "domain": d.domain.decode()}))
`;
  const run = Bun.spawnSync([PYTHON, "-c", script, file, JSON.stringify(records)]);
  if (run.exitCode !== 0) throw new Error(run.stderr.toString());
  return JSON.parse(run.stdout.toString());
}

describe.skipIf(!hasChromium || !hasDkimpy)("a newcomer's first run in Chromium", () => {
  test("set-up, then the dashboard shows the first-day steps with adding a domain next", async () => {
    await page.goto(mf.appliance.setupUrl!);
    await page.fill("#f-password", PASSWORD);
    await page.fill("#f-password2", PASSWORD);
    await page.click("button[type=submit]");
    await page.waitForURL(url("/"));
    expect(await steps()).toEqual([
      ["✓", "Create the first admin"],
      ["→", "Add a domain"],
      ["○", "Publish its DNS records"],
      ["○", "Add an alias"],
      ["○", "Send a test message"],
    ]);
    await shot("first-run-start");
  });

  test("add a domain: its DNS records with live ✓/✗, and adding an alias as the next step", async () => {
    await page.click("#getting-started a.button");
    await page.waitForURL(url("/domains"));
    await page.fill("#f-name", "newcomer.test");
    await page.click("form[action='/domains'] button");
    await page.waitForURL(/\/domains\/newcomer\.test/);
    const marks = await page.$$eval("#dns-records tbody tr", (trs) => trs.map((tr) => [tr.children[0]!.textContent!.trim(), tr.children[2]!.textContent!.trim()]));
    expect(marks[0]).toEqual(["✓", "MX"]);
    expect(marks.filter(([mark]) => mark === "✗").length).toBeGreaterThan(2);
    // Publish what the page says (its zone download) and this server's address with its PTR, then check again without reloading.
    publishZoneLines(dns.zones, await (await page.request.get(url("/domains/newcomer.test/zone"))).text());
    (dns.zones[TEST_HOSTNAME] ??= {}).A = ["127.0.0.1"];
    dns.zones["1.0.0.127.in-addr.arpa"] = { PTR: [TEST_HOSTNAME] };
    await Promise.all([page.waitForResponse((r) => r.url().endsWith("/domains/newcomer.test/check")), page.click("text=Check again")]);
    await page.waitForFunction(() => (globalThis as unknown as InPage).document.querySelectorAll(".htmx-request, .htmx-settling").length === 0);
    const unpublished = await page.$$eval("#dns-records tbody tr", (trs) => trs.filter((tr) => tr.children[0]!.textContent!.trim() !== "✓").map((tr) => tr.textContent));
    expect(unpublished).toEqual([]);
    await shot("first-run-domain");
    expect(await text("#next-step")).toBe("Next: publish the records below at your DNS provider, then add an alias on newcomer.test");
  });

  test("add an alias: the next step, a test message, is linked; the dashboard shows it next", async () => {
    await page.click("#next-step a");
    await page.waitForURL(url("/aliases?domain=newcomer.test"));
    expect(await page.$eval("#c-domain", (select) => (select as unknown as { value: string }).value)).toBe("newcomer.test");
    await page.fill("#f-name", "hello");
    await page.fill("#c-recipients", "me@inbox.test");
    await page.click("#create-alias button[type=submit]");
    await page.waitForSelector("#next-step");
    expect(await text("#create-alias .flash")).toStartWith("Created hello@newcomer.test.");
    expect(await page.getAttribute("#next-step a", "href")).toMatch(/^\/aliases\/\d+\/test-message$/);
    await page.goto(url("/"));
    expect(await steps()).toEqual([
      ["✓", "Create the first admin"],
      ["✓", "Add a domain"],
      ["✓", "Publish its DNS records"],
      ["✓", "Add an alias"],
      ["→", "Send a test message"],
    ]);
    await shot("first-run-dashboard");
  });

  test("send a test message from the alias's row: the page shows the destination MX's 250, the sink got it DKIM-signed", async () => {
    await page.click("#getting-started a.button");
    await page.waitForURL(url("/aliases?domain=newcomer.test"));
    const before = accepting.messages.length;
    await page.click("#aliases tbody tr:first-child button:has-text('Send a test message')");
    await page.waitForSelector("#test-report");
    expect(await text("h1")).toBe("Send a test message to hello@newcomer.test");
    expect(await results()).toEqual([["✓", "me@inbox.test", "250 2.0.0 sink accepted", "mx.inbox.test (TLSv1.3)"]]);
    expect(await text("#test-report p")).toBe("Test message for hello@newcomer.test from mailferry-test@newcomer.test, DKIM-signed by newcomer.test.");
    await shot("first-run-test-message");

    const [message] = accepting.messages.slice(before).filter((m) => m.mailFrom === "mailferry-test@newcomer.test");
    expect(message!.rcptTo).toEqual(["me@inbox.test"]);
    expect(dkimpyVerifies(message!.raw)).toEqual({ ok: true, domain: "newcomer.test" });
  });

  test("a destination that refuses: its 550 and text are on the page", async () => {
    await page.goto(url("/aliases?domain=newcomer.test"));
    await page.fill("#f-name", "old");
    await page.fill("#c-recipients", "gone@refuse.test");
    await page.click("#create-alias button[type=submit]");
    await page.waitForSelector("#next-step");
    // Through the link under the confirmation this time.
    await page.click("#next-step a");
    await page.waitForURL(/\/aliases\/\d+\/test-message$/);
    await page.click("main form button[type=submit]");
    await page.waitForSelector("#test-report");
    expect(await results()).toEqual([["✗", "gone@refuse.test", "550 5.1.1 no such mailbox here", "mx.refuse.test (TLSv1.3)"]]);
    expect(refusing.messages).toHaveLength(0);
  });

  test("every step done: the dashboard no longer shows them", async () => {
    await page.goto(url("/"));
    expect(await text("h1")).toBe("Dashboard");
    expect(await page.$("#getting-started")).toBeNull();
  });
});
