/**
 * The storage page in Debian's chromium against a real portal whose policy gives
 * homes an 8 MiB quota and one project 16 MiB (loop-mounted ext4 volumes, so
 * root and loop devices): alice sees her home and both projects with their
 * quotas, what is used (a 3 MiB file written into her home shows) and what is
 * left; the project without a quota says so. The figures are the API's (`mrg quota`).
 */
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { closeThenRemove } from "@merge/facility/testing";
import { PortalClient } from "@merge/portal";
import { type Started, startPortal } from "@merge/portal/main";
import { policyWithQuota } from "@merge/xdc/testing";
import type { BrowserContext } from "playwright-core";
import { builtUi } from "./built-ui.ts";
import { launchChromium, onPage, pageErrors, signIn, skipWithoutChromium } from "./chromium.ts";

const skip =
  skipWithoutChromium ||
  (process.getuid?.() !== 0 && "needs root (quotas are loop-mounted volumes)") ||
  (!existsSync("/dev/loop-control") && "no loop devices");

const PW = "alice-secret-pw";
let base: string;
let started: Started | undefined;
let browser: BrowserContext | undefined;

before(async () => {
  if (skip) return;
  base = await mkdtemp(join(tmpdir(), "merge-web-storage-"));
  const ui = await builtUi(base);
  const policyFile = policyWithQuota(
    base,
    "  home:\n    default: 8MiB\n  project:\n    projects: { quotaed: 16MiB }\n",
  );
  started = await startPortal({
    dataDir: join(base, "data"),
    port: 0,
    policyFile,
    plugins: [ui],
  });
  const anon = new PortalClient(started.url);
  const admin = new PortalClient(started.url, (await anon.login("admin", started.admin.password as string)).token);
  await anon.register({ name: "alice", email: "alice@example.org", password: PW });
  await admin.setUserState("alice", "active");
  const alice = new PortalClient(started.url, (await anon.login("alice", PW)).token);
  await alice.createProject({ name: "quotaed" });
  await alice.createProject({ name: "open" });
  writeFileSync(join(started.portal.ctx.workspace.homeDir("alice"), "data.bin"), Buffer.alloc(3 * 1024 * 1024, 1));
  browser = await launchChromium(join(base, "profile"));
});

after(() => closeThenRemove(base, browser, started));

test("the storage page shows each directory's quota, use and what is left", { skip, timeout: 120_000 }, async () => {
  await onPage(browser as BrowserContext, "/tmp/merge-web-storage-failed.png", async (page, problems) => {
    await page.goto(`${(started as Started).url}/ui/`);
    await signIn(page, "alice", PW);
    await page.getByRole("link", { name: "Storage" }).click();
    assert.equal(new URL(page.url()).pathname, "/ui/storage");
    const table = page.getByTestId("storage");
    await table.waitFor();
    const row = async (path: string) =>
      ((await table.locator(`tr[data-path='${path}'] td`).allTextContents()) as string[]).slice(0, 4);

    const [, quota, used, available] = await row("/home/alice");
    assert.equal(quota, "8 MiB");
    // 3 MiB of data plus the file system's own few hundred KiB.
    const mib = (s: string | undefined) => {
      const m = /^([\d.]+) (KiB|MiB)$/.exec(s ?? "");
      assert.ok(m, `a size, not ${s}`);
      return Number(m[1]) / (m[2] === "KiB" ? 1024 : 1);
    };
    assert.ok(mib(used) >= 3 && mib(used) < 4.5, `home used ${used}`);
    assert.ok(mib(available) > 2 && mib(available) < 5, `home available ${available}`);
    const meter = table.locator("tr[data-path='/home/alice'] meter");
    assert.ok(Number(await meter.getAttribute("value")) > 0.35, "the bar shows the share used");

    assert.equal((await row("/proj/quotaed"))[1], "16 MiB");
    assert.deepEqual(await row("/proj/open"), ["/proj/open", "none", "-", "-"]);
    assert.equal(await table.locator("tr[data-path='/proj/open'] meter").count(), 0, "no bar without a quota");
    await page.screenshot({ path: "/tmp/merge-web-storage.png" });
    assert.deepEqual(pageErrors(problems), []);
  });
});
