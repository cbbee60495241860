/**
 * Jupyter reaching the nodes, in Debian's chromium: a portal with the web UI, a facility on the
 * linux backend and an XDC host, all real (root). A busybox pair is materialized, a Jupyter XDC
 * attached to it over WireGuard; the administrator signs in through the portal's pages, opens
 * Jupyter from the project page (the proxy's cookie, no token), and a cell in a notebook pings
 * node `a` by name: its output shows the replies. Needs chromium, wireguard-go and the Debian image.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { LINUX_PAIR } from "@merge/e2e/portal-stack";
import { imageCache } from "@merge/facility/linux";
import { skip as linuxSkip } from "@merge/facility/testing/linux";
import { ensureJupyterLayer } from "@merge/xdc";
import { type AttachStack, startAttachStack } from "@merge/xdc/attach-stack";
import type { BrowserContext, Page } from "playwright-core";
import { builtUi } from "./built-ui.ts";
import { launchChromium, signIn, skipWithoutChromium, watch } from "./chromium.ts";
import { putNotebook } from "./xdc-ui.ts";

const skip =
  skipWithoutChromium ||
  linuxSkip ||
  (!existsSync(join(imageCache(), "bookworm", "usr/sbin/sshd")) && "needs the Debian image (scripts/setup.sh)") ||
  (!existsSync("/usr/bin/wireguard-go") && "needs wireguard-go (scripts/setup.sh)");

const tmp = mkdtempSync(join(tmpdir(), "merge-web-jupyter-attach-"));
const proj = `p${randomBytes(4).toString("hex")}`;
const MZ = `r1.e1.${proj}`;
const XDC = `x0.${proj}`;
const BASE = `/xdc/${XDC}/jupyter`;
let a: AttachStack | undefined;
let browser: BrowserContext | undefined;

before(async () => {
  if (skip) return;
  await ensureJupyterLayer();
  const ui = await builtUi(tmp);
  // The model's compile shares this machine with chromium, Jupyter and a materialization: room for it.
  a = await startAttachStack(tmp, { plugins: [ui], compileTimeoutMs: 150_000 });
  a.mzids.push(MZ);
  await a.stack.accepted(proj, "e1", LINUX_PAIR, "ts");
  browser = await launchChromium(join(tmp, "profile"));
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    try {
      await a?.close();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
});

test("a notebook cell pings an attached node by name", { skip, timeout: 600_000 }, async () => {
  const s = a as AttachStack;
  const up = await s.mrg(["materialize", MZ, "--timeout", "180"]);
  assert.equal(up.code, 0, up.stderr + up.stdout);
  const made = await s.mrg(["xdc", "new", XDC, "--jupyter"]);
  assert.equal(made.code, 0, made.stderr + made.stdout);
  const att = await s.mrg(["xdc", "attach", XDC, MZ]);
  assert.equal(att.code, 0, att.stderr + att.stdout);

  const ctx = browser as BrowserContext;
  const page = await ctx.newPage();
  const problems = watch(page);
  let jp: Page | undefined;
  try {
    await page.goto(`${s.stack.portal.url}/ui/projects/${proj}`);
    await signIn(page, "admin", s.stack.portal.admin.password as string);
    const row = page.locator(`[data-xdc='${XDC}']`);
    await row.getByText("running").waitFor({ timeout: 180_000 });
    [jp] = await Promise.all([ctx.waitForEvent("page"), row.getByRole("button", { name: "Open Jupyter" }).click()]);
    await jp.waitForURL(new RegExp(`${BASE}/tree`));
    const put = await putNotebook(
      jp,
      BASE,
      "ping.ipynb",
      'import subprocess\nprint(subprocess.run(["ping", "-c", "2", "-W", "2", "a"], capture_output=True, text=True).stdout)',
    );
    assert.equal(put, 201);
    await jp.goto(`${s.stack.portal.url}${BASE}/notebooks/ping.ipynb`);
    await jp.locator("#kernel_indicator_icon.kernel_idle_icon").waitFor({ timeout: 120_000 });
    await jp.locator(".cell .CodeMirror").first().click();
    await jp.keyboard.press("Shift+Enter");
    const out = jp.locator(".output_area .output_text").first();
    await out.waitFor({ timeout: 120_000 });
    const text = (await out.textContent()) ?? "";
    assert.match(text, /PING a\.infranet \(172\.30\.\d+\.\d+\)/);
    assert.match(text, /2 packets transmitted, 2 received/);
    await jp.screenshot({ path: "/tmp/merge-web-jupyter-attach.png" });
  } catch (e) {
    await (jp ?? page).screenshot({ path: "/tmp/merge-web-jupyter-attach-failed.png" }).catch(() => {});
    throw new Error(`${(e as Error).message}\n${problems.join("\n")}`);
  } finally {
    await jp?.close();
    await page.close();
  }
  const gone = await s.mrg(["xdc", "delete", XDC]);
  assert.equal(gone.code, 0, gone.stderr);
  const down = await s.mrg(["dematerialize", MZ, "--timeout", "180"]);
  assert.equal(down.code, 0, down.stderr + down.stdout);
});
