// What the web UI's XDC tests start from: an XDC stack (portal, XDC host)
// serving the built UI, alice signed up with her project `myproj`, and a browser.
import { join } from "node:path";
import { startXdcStack, type XdcStack } from "@merge/xdc/testing";
import type { BrowserContext } from "playwright-core";
import { buildWeb } from "../src/build.ts";
import { webUiPlugin } from "../src/serve.ts";
import { launchChromium } from "./chromium.ts";

export async function startXdcUi(tmp: string): Promise<{ s: XdcStack; browser: BrowserContext }> {
  const distDir = join(tmp, "dist");
  await buildWeb(distDir);
  const s = await startXdcStack(tmp, { plugins: [webUiPlugin({ distDir })] });
  try {
    const alice = await s.user("alice");
    await alice.createProject({ name: "myproj" });
    return { s, browser: await launchChromium(join(tmp, "profile")) };
  } catch (e) {
    await s.close();
    throw e;
  }
}
