// The admin UI in a real browser: Playwright (playwright-core) driving
// Debian's Chromium against mailferry on loopback. Screenshots of the main
// pages go to test/artifacts/ (git-ignored).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as OTPAuth from "otpauth";
import type { Browser, Page } from "playwright-core";
import { hasChromium, openBrowser, screenshot } from "../support/chromium.ts";
import { type DnsServer, startDnsServer } from "../support/dns-server.ts";
import { startMailferry, TEST_HOSTNAME, type TestMailferry } from "../support/mailferry.ts";
import { type Sink, startSink } from "../support/sink.ts";
import { sendMail } from "../support/smtp-client.ts";

const PASSWORD = "correct horse battery staple";

let dns: DnsServer;
let sink: Sink;
let mf: TestMailferry;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!hasChromium) return;
  sink = await startSink({ host: "127.0.0.2" });
  dns = await startDnsServer({
    // browser.test publishes its MX already, nothing else yet.
    "browser.test": { MX: [{ priority: 10, exchange: TEST_HOSTNAME }] },
    "dest.test": { MX: [{ priority: 10, exchange: "mx.dest.test" }] },
    "mx.dest.test": { A: ["127.0.0.2"] },
  });
  mf = await startMailferry({ dns, env: { MAILFERRY_OUTBOUND_PORT: String(sink.port) } });
  ({ browser, page } = await openBrowser());
}, 60_000);

afterAll(async () => {
  if (!hasChromium) return;
  await browser?.close();
  await mf?.stop();
  await dns?.close();
  await sink?.close();
});

/** The browser's document in functions Playwright runs in the page (they are serialized: no closures; the project has no DOM typings). */
type InPage = { document: { querySelector(s: string): { textContent: string | null } | null } };
const url = (path: string) => `${mf.httpUrl}${path.replace(/^\//, "")}`;
const shot = (name: string) => screenshot(page, name);

async function login(code?: string) {
  await page.goto(url("/login"));
  await page.fill("#f-username", "admin");
  await page.fill("#f-password", PASSWORD);
  await page.click("button[type=submit]");
  if (code) {
    await page.fill("#f-code", code);
    await page.fill("#f-password", PASSWORD);
    await page.click("button[type=submit]");
  }
}

describe.skipIf(!hasChromium)("admin UI in Chromium", () => {
  test("first run: without the set-up token the instance cannot be claimed; with it the first admin is created", async () => {
    await page.goto(url("/"));
    expect(page.url()).toEndWith("/setup");
    expect(await page.textContent("h1")).toBe("Set-up link needed");
    await page.goto(mf.appliance.setupUrl!);
    await shot("setup");
    await page.fill("#f-password", "too short");
    await page.fill("#f-password2", "too short");
    await page.click("button[type=submit]");
    expect(await page.textContent("#e-password")).toContain("at least 12 characters");
    await page.fill("#f-password", PASSWORD);
    await page.fill("#f-password2", PASSWORD);
    await page.click("button[type=submit]");
    await page.waitForURL(url("/"));
    expect(await page.textContent("h1")).toBe("Dashboard");
    // The token is spent: set-up is closed now.
    const again = await page.request.get(mf.appliance.setupUrl!);
    expect(again.status()).toBe(404);
  });

  test("logout, a wrong password is refused, the right one logs in", async () => {
    await page.click("header form button");
    await page.waitForURL(/\/login$/);
    await page.fill("#f-username", "admin");
    await page.fill("#f-password", "wrong password!!");
    await page.click("button[type=submit]");
    expect(await page.textContent(".flash.bad")).toBe("Wrong user name or password.");
    await shot("login");
    await login();
    await page.waitForURL(url("/"));
  });

  test("add a domain and see its DNS records checked against DNS (✓ for the published MX, ✗ or ! for the rest)", async () => {
    await page.goto(url("/domains"));
    await page.fill("#f-name", "Browser.Test");
    await page.click("form[action='/domains'] button");
    await page.waitForURL(/\/domains\/browser\.test/);
    expect(await page.textContent(".flash.ok")).toContain("Added browser.test");
    const rows = await page.$$eval("#dns-records tbody tr", (trs) => trs.map((tr) => [tr.children[0]!.textContent!.trim(), tr.children[2]!.textContent!.trim(), tr.children[1]!.textContent!.trim()]));
    expect(rows[0]).toEqual(["✓", "MX", "browser.test."]);
    // The rest is missing: ✗ where required, ! where recommended (DMARC, MTA-STS policy and host, TLS-RPT); the host's address too.
    expect(rows.filter((r) => r[0] === "!").map((r) => r[1])).toEqual(["TXT", "TXT", "CNAME", "TXT"]);
    expect(rows.filter((r) => r[0] === "✗").length).toBe(rows.length - 5);
    expect(rows.at(-1)).toEqual(["✗", "A", `${TEST_HOSTNAME}.`]);
    // Publish the SPF record and this server's address (SPF is judged by whether it authorizes that address), then check again without reloading the page.
    dns.zones["browser.test"]!.TXT = ["v=spf1 mx -all"];
    dns.zones[TEST_HOSTNAME] = { A: ["127.0.0.1"] };
    await page.click("text=Check again");
    await page.waitForFunction(() => (globalThis as unknown as InPage).document.querySelector("#dns-records tbody tr:nth-child(2) td")?.textContent?.trim() === "✓");
    await shot("domain");
  });

  test("rotate the webhook key", async () => {
    const before = await page.textContent("#webhook-key");
    await page.click("text=Rotate webhook key");
    await page.waitForSelector(".flash.ok");
    expect(await page.textContent("#webhook-key")).not.toBe(before);
    expect(await page.textContent("#webhook-key")).toMatch(/^[0-9a-f]{64}$/);
  });

  test("create exact, catch-all and regex aliases; a bad one shows its error next to the field", async () => {
    await page.goto(url("/aliases"));
    // htmx swaps the form with the answer: a confirmation, or the error next to its field.
    const create = async (name: string, recipients: string) => {
      await page.fill("#f-name", name);
      await page.fill("#c-recipients", recipients);
      await Promise.all([page.waitForResponse((r) => r.url().endsWith("/aliases") && r.request().method() === "POST"), page.click("#create-alias button[type=submit]")]);
      await page.waitForFunction(() => (globalThis as unknown as InPage).document.querySelector("#create-alias.htmx-request") === null);
      return (await page.textContent("#create-alias .flash, #create-alias .error"))?.trim();
    };
    expect(await create("hello", "you@dest.test")).toBe("Created hello@browser.test.");
    expect(await create("*", "catch@dest.test")).toBe("Created *@browser.test.");
    expect(await create("/^(sales|info)$/", "team+$1@dest.test")).toBe("Created /^(sales|info)$/@browser.test.");
    expect(await create("/^(a|b$/", "x@dest.test")).toContain("not a regular expression RE2 accepts");
    expect(await page.getAttribute("#f-name", "aria-invalid")).toBe("true");
    await page.goto(url("/aliases?domain=browser.test"));
    const names = await page.$$eval("#aliases tbody tr td:first-child", (tds) => tds.map((td) => td.firstChild!.textContent));
    expect(names).toEqual(["hello", "*", "/^(sales|info)$/"]);
    await shot("aliases");
  });

  test("test an address shows the verdict and the alias that produced each target", async () => {
    await page.fill("#f-address", "info@browser.test");
    await page.click("form[action='/aliases/test'] button");
    await page.waitForSelector("#test-verdict");
    expect(await page.textContent("#test-verdict")).toBe("info@browser.test: deliver to 1 target\n  team+info@dest.test  via /^(sales|info)$/ on browser.test");
  });

  test("import a TXT paste with one bad line: nothing written, the error shown", async () => {
    const count = async () => (await page.$$("#aliases tbody tr")).length;
    const before = await count();
    await page.fill("#i-text", "forward-email=one:a@dest.test\nforward-email=!!!!bad\nforward-email=two:b@dest.test");
    await page.click("#import-form button[value=apply]");
    await page.waitForSelector("#import-result");
    expect(await page.textContent("#import-result")).toContain("Nothing imported: 1 error");
    expect(await page.textContent("#import-result")).toContain("line 2, column 15");
    await page.goto(url("/aliases?domain=browser.test"));
    expect(await count()).toBe(before);
  });

  test("a forwarded message appears in the mail log and the dashboard count rises", async () => {
    await page.goto(url("/"));
    const before = Number(await page.textContent("#total-forwarded"));
    const info = await sendMail(mf.smtpPort, { from: "alice@sender.test", to: "hello@browser.test", subject: "Seen in the browser" });
    expect(String(info.response)).toStartWith("250");
    await page.goto(url("/log?alias=hello%40browser.test"));
    expect(await page.textContent("main table")).toContain("250 2.0.0 Message forwarded");
    await page.click("main table tbody tr:first-child a");
    expect(await page.textContent("main")).toContain("Seen in the browser");
    await shot("log-event");
    await page.goto(url("/"));
    expect(Number(await page.textContent("#total-forwarded"))).toBe(before + 1);
    await shot("dashboard");
  });

  test("enable TOTP, then logging in asks for the code", async () => {
    await page.goto(url("/account"));
    await page.click("text=Set up TOTP");
    const secret = (await page.textContent("#totp-secret"))!;
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30 });
    await page.fill("#f-code", totp.generate());
    await page.click("form[action='/account/totp/confirm'] button");
    await page.waitForSelector("#recovery-codes");
    expect((await page.textContent("#recovery-codes"))!.trim().split("\n")).toHaveLength(8);
    await shot("account");
    await page.click("header form button");
    await page.waitForURL(/\/login$/);
    await login();
    expect(await page.textContent(".flash.bad")).toBe("Enter the code from your authenticator app.");
    // The code that confirmed TOTP is spent (a code works once): the next period's code, within the accepted window.
    await page.fill("#f-code", totp.generate({ timestamp: Date.now() + 30_000 }));
    await page.fill("#f-password", PASSWORD);
    await page.click("button[type=submit]");
    await page.waitForURL(url("/"));
  });

  test("a POST without the CSRF token is refused, even with a valid session", async () => {
    const res = await page.request.post(url("/domains"), { form: { name: "sneaky.test" } });
    expect(res.status()).toBe(403);
    await page.goto(url("/domains"));
    expect(await page.textContent("main")).not.toContain("sneaky.test");
    await page.goto(url("/settings"));
    await shot("settings");
    await page.goto(url("/lists"));
    await shot("lists");
  });
});
