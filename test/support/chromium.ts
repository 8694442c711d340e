// Debian's Chromium driven by playwright-core, for the admin UI's browser
// tests. Screenshots go to test/artifacts/ (git-ignored; docs/screenshots/ has
// the copies the docs show), so a test run leaves the checkout as it was.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn("\n*** Chromium is NOT installed: the browser tests of the admin UI are SKIPPED. Install it: apt-get install chromium ***\n");

export const ARTIFACTS = join(import.meta.dir, "../artifacts");

export interface OpenBrowser {
  browser: Browser;
  context: BrowserContext;
  page: Page;
}

/** A headless Chromium with one page; nothing it does leaves the machine (no QUIC, sync, updates or background requests). */
export async function openBrowser(viewport = { width: 1280, height: 900 }): Promise<OpenBrowser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport });
  return { browser, context, page: await context.newPage() };
}

/** A full-page screenshot in test/artifacts/<name>.png. */
export const screenshot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
