/**
 * Jupyter in an XDC from the web UI, in Debian's chromium, against a real portal and a real XDC host (root):
 * a maintainer creates an XDC with the Jupyter box ticked, opens Jupyter from the project page (the portal
 * sets the proxy's cookie; no token is ever shown or typed), runs a cell in a notebook and sees its output
 * (the XDC's host name, printed by Python in the XDC). A browser that is not signed in gets the portal's
 * refusal at the proxy. Delete leaves no Jupyter process.
 * (A cell pinging an attached node: xdc-jupyter-attach.test.ts.)
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { closeThenRemove } from "@merge/facility/testing";
import { ensureJupyterLayer } from "@merge/xdc";
import type { XdcStack } from "@merge/xdc/testing";
import type { BrowserContext, Page } from "playwright-core";
import { signIn, watch } from "./chromium.ts";
import { putNotebook, skipXdcUi, startXdcUi } from "./xdc-ui.ts";

const skip = skipXdcUi;

const BASE = "/xdc/x0.myproj/jupyter";
const tmp = mkdtempSync(join(tmpdir(), "merge-web-jupyter-"));
let s: XdcStack | undefined;
let browser: BrowserContext | undefined;

function jupyterRuns(): boolean {
  return readdirSync("/proc").some((e) => {
    try {
      return /^\d+$/.test(e) && readFileSync(`/proc/${e}/cmdline`, "utf8").includes(`base_url=${BASE}/`);
    } catch {
      return false;
    }
  });
}

before(async () => {
  if (skip) return;
  await ensureJupyterLayer(); // the first time: apt in a chroot (a minute or more), cached after
  ({ s, browser } = await startXdcUi(tmp));
});

after(() => closeThenRemove(tmp, browser, s));

test("open Jupyter from the project page and run a cell", { skip, timeout: 300_000 }, async () => {
  const stack = s as XdcStack;
  const ctx = browser as BrowserContext;
  const page = await ctx.newPage();
  const problems = watch(page);
  let jp: Page | undefined;
  try {
    // Before signing in, the proxy refuses this browser.
    const anon = await page.goto(`${stack.portal.url}${BASE}/tree`);
    assert.equal(anon?.status(), 401);

    await page.goto(`${stack.portal.url}/ui/projects/myproj`);
    await signIn(page, "alice", "pw-alice-secret");
    const form = page.getByTestId("new-xdc");
    await form.locator("input[placeholder^='new XDC']").fill("x0");
    await form.getByLabel("Jupyter").check();
    await form.getByRole("button", { name: "Create XDC" }).click();
    const row = page.locator("[data-xdc='x0.myproj']");
    await row.getByText("running").waitFor({ timeout: 180_000 });

    [jp] = await Promise.all([ctx.waitForEvent("page"), row.getByRole("button", { name: "Open Jupyter" }).click()]);
    await jp.waitForURL(new RegExp(`${BASE}/tree`));
    await jp.locator("#notebook_list").waitFor({ state: "attached" });
    assert.doesNotMatch(jp.url(), /token/);

    // A notebook with one cell, saved through the proxy with this tab's cookie (Jupyter's contents API).
    const put = await putNotebook(jp, BASE, "hello.ipynb", 'import socket; print("hello from", socket.gethostname())');
    assert.equal(put, 201);
    // The notebook is in the project's directory, which is the portal's.
    assert.ok(existsSync(join(tmp, "portal", "proj", "myproj", "hello.ipynb")));

    await jp.goto(`${stack.portal.url}${BASE}/notebooks/hello.ipynb`);
    await jp.locator("#kernel_indicator_icon.kernel_idle_icon").waitFor({ timeout: 120_000 });
    await jp.locator(".cell .CodeMirror").first().click();
    await jp.keyboard.press("Shift+Enter");
    const out = jp.locator(".output_area .output_text").first();
    await out.waitFor({ timeout: 120_000 });
    assert.match((await out.textContent()) ?? "", /hello from x0-myproj/);
    await jp.screenshot({ path: "/tmp/merge-web-jupyter.png" });
    await jp.close();
    jp = undefined;

    page.once("dialog", (d) => void d.accept());
    await page.bringToFront();
    await row.getByRole("button", { name: "Delete" }).click();
    await page.getByText("No XDCs yet.").waitFor();
    assert.equal(jupyterRuns(), false, "no Jupyter process after delete");
    assert.deepEqual(await stack.host.leftovers("x0.myproj"), []);
  } catch (e) {
    await jp?.screenshot({ path: "/tmp/merge-web-jupyter-failed.png" }).catch(() => {});
    throw new Error(`${(e as Error).message}\n${problems.join("\n")}`);
  } finally {
    await jp?.close();
    await page.close();
  }
});
