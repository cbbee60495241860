// What the web UI's XDC tests start from: an XDC stack (portal, XDC host)
// serving the built UI, alice signed up with her project `myproj`, and a browser.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { imageCache } from "@merge/facility/linux";
import { startXdcStack, type XdcStack } from "@merge/xdc/testing";
import type { BrowserContext, Page } from "playwright-core";
import { builtUi } from "./built-ui.ts";
import { launchChromium, skipWithoutChromium } from "./chromium.ts";

/** Why the XDC UI tests cannot run here, or false. */
export const skipXdcUi =
  skipWithoutChromium ||
  (process.getuid?.() !== 0
    ? "needs root (XDCs are containers)"
    : !existsSync(join(imageCache(), "bookworm", "usr/sbin/sshd"))
      ? "needs the Debian image (scripts/setup.sh)"
      : false);

export async function startXdcUi(tmp: string): Promise<{ s: XdcStack; browser: BrowserContext }> {
  const ui = await builtUi(tmp);
  const s = await startXdcStack(tmp, { plugins: [ui] });
  try {
    const alice = await s.user("alice");
    await alice.createProject({ name: "myproj" });
    return { s, browser: await launchChromium(join(tmp, "profile")) };
  } catch (e) {
    await s.close();
    throw e;
  }
}

/**
 * Saves a notebook `name` of one code cell (`source`) at the Jupyter under `base`, from `page` (Jupyter's
 * contents API, through the proxy with the tab's cookie). Returns the HTTP status.
 */
export function putNotebook(page: Page, base: string, name: string, source: string): Promise<number> {
  return page.evaluate(
    async ({ base, name, source }) => {
      const cell = { cell_type: "code", id: "c0", metadata: {}, execution_count: null, outputs: [], source };
      const nb = {
        type: "notebook",
        content: {
          nbformat: 4,
          nbformat_minor: 5,
          metadata: { kernelspec: { name: "python3", display_name: "Python 3", language: "python" } },
          cells: [cell],
        },
      };
      const r = await fetch(`${base}/api/contents/${name}`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(nb),
      });
      return r.status;
    },
    { base, name, source },
  );
}
