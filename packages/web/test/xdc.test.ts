/**
 * XDCs and SSH keys in the web UI, in Debian's chromium, against a real portal
 * and a real XDC host (root: XDCs are containers): a maintainer creates an XDC
 * on the project page, sees it running, is told why an attach to a
 * materialization that is not there fails, adds an SSH key on the keys page, and
 * deletes the XDC, which leaves nothing on the host.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { closeThenRemove } from "@merge/facility/testing";
import type { XdcStack } from "@merge/xdc/testing";
import type { BrowserContext } from "playwright-core";
import { signIn, watch } from "./chromium.ts";
import { skipXdcUi, startXdcUi } from "./xdc-ui.ts";

const skip = skipXdcUi;

const tmp = mkdtempSync(join(tmpdir(), "merge-web-xdc-"));
let s: XdcStack | undefined;
let browser: BrowserContext | undefined;
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0mVXkC6QzHq4F2f0u0JdXq9Yw0XyqvE8Zb1YQ2c3d alice@laptop";

before(async () => {
  if (skip) return;
  ({ s, browser } = await startXdcUi(tmp));
});

after(() => closeThenRemove(tmp, browser, s));

test("create and delete an XDC, add and delete an SSH key", { skip, timeout: 180_000 }, async () => {
  const stack = s as XdcStack;
  const page = await (browser as BrowserContext).newPage();
  const problems = watch(page);
  try {
    await page.goto(`${stack.portal.url}/ui/projects/myproj`);
    await signIn(page, "alice", "pw-alice-secret");
    const form = page.getByTestId("new-xdc");
    await form.locator("input[placeholder^='new XDC']").fill("x0");
    await form.getByRole("button", { name: "Create XDC" }).click();
    const row = page.locator("[data-xdc='x0.myproj']");
    await row.waitFor();
    assert.match((await row.textContent()) ?? "", /running.*ssh x0-myproj/);
    assert.equal(stack.host.status("x0.myproj")?.state, "running");
    // a name the portal refuses: its message shows
    await form.locator("input[placeholder^='new XDC']").fill("x0");
    await form.getByRole("button", { name: "Create XDC" }).click();
    await page.getByText("XDC x0.myproj already exists").waitFor();
    // Attach names a materialization; one that is not there is the portal's message, and nothing is attached.
    const attach = row.getByTestId("attach-xdc");
    await attach.locator("input").fill("r1.nope.myproj");
    await attach.getByRole("button", { name: "Attach" }).click();
    await row.getByText("materialization 'r1.nope.myproj' does not exist").waitFor();
    assert.equal(stack.host.status("x0.myproj")?.attached, undefined);
    await page.screenshot({ path: "/tmp/merge-web-xdcs.png" });

    await page.getByRole("link", { name: "SSH keys" }).click();
    await page.getByTestId("new-key").locator("textarea").fill(KEY);
    await page.getByTestId("new-key").getByRole("button", { name: "Add key" }).click();
    await page.getByTestId("keys").getByText("alice@laptop").waitFor();
    const [k] = await (await stack.user("bob")).keys("alice").catch(() => [undefined]);
    assert.equal(k, undefined, "bob may not read alice's keys");
    await page.getByTestId("keys").getByRole("button", { name: "Delete" }).click();
    await page.getByText("No keys yet.").waitFor();

    page.once("dialog", (d) => void d.accept());
    await page.goto(`${stack.portal.url}/ui/projects/myproj`);
    await page.locator("[data-xdc='x0.myproj']").getByRole("button", { name: "Delete" }).click();
    await page.getByText("No XDCs yet.").waitFor();
    assert.deepEqual(await stack.host.leftovers("x0.myproj"), []);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${problems.join("\n")}`);
  } finally {
    await page.close();
  }
});
