/**
 * Debian's chromium through playwright-core (never a downloaded browser), as the
 * browser tests drive it: headless, its own profile, nothing off 127.0.0.1; and
 * the steps they share (watching for page errors, signing in through the
 * portal's OIDC pages).
 */
import { existsSync } from "node:fs";
import type { BrowserContext, Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
/** `skip` for node:test: a message when chromium is missing, false otherwise. */
export const skipWithoutChromium: string | false = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing (apt-get install chromium); browser tests skipped`;

export async function launchChromium(profileDir: string): Promise<BrowserContext> {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  // This machine is shared and often loaded: give each step room (the tests' own timeouts still bound them).
  browser.setDefaultTimeout(60_000);
  // Nothing leaves loopback: the provider's stock pages link web fonts, which are refused here.
  await browser.route(
    (u) => u.hostname !== "127.0.0.1",
    (r) => r.abort(),
  );
  return browser;
}

/** Collects page errors so a test can show them when it fails. */
export function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  return problems;
}

/** Signs in from a UI page through the portal's own sign-in page (the UI never handles the password). */
export async function signIn(page: Page, user: string, password: string): Promise<void> {
  await page.getByTestId("sign-in").click();
  await page.waitForURL(/\/oidc\/interaction\//);
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/ui\//);
  await page.getByTestId("whoami").filter({ hasText: user }).waitFor();
}

/** The page errors and Content Security Policy violations among `problems`: what no page may have. */
export function pageErrors(problems: string[]): string[] {
  return problems.filter((p) => p.startsWith("page error") || /Content Security Policy/i.test(p));
}

/**
 * Runs `body` on a new page of `browser` with its problems collected (`watch`); when it fails, a
 * full-page screenshot at `failureShot` and the error again with the browser's problems; the page
 * closed after, failed or not.
 */
export async function onPage(
  browser: BrowserContext,
  failureShot: string,
  body: (page: Page, problems: string[]) => Promise<void>,
): Promise<void> {
  const page = await browser.newPage();
  const problems = watch(page);
  try {
    await body(page, problems);
  } catch (e) {
    await page.screenshot({ path: failureShot, fullPage: true }).catch(() => {});
    throw new Error(`${(e as Error).message}\nbrowser: ${problems.join("\n")}`, { cause: e });
  } finally {
    await page.close();
  }
}
