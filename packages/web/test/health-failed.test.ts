/**
 * The admin page's operations view lists each facility's failed actions with
 * their errors, in Debian's chromium: a real portal serving the UI and a real
 * facility (commander, driver, rex) on the sim backend, whose node setup is
 * made to fail. The portal asks the facility over the portal↔facility channel
 * (FacilityService.Health); the page must show what the facility recorded.
 * Screenshot: /tmp/merge-web-health-failed.png.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type PortalStack, startPortalStack } from "@merge/e2e/portal-stack";
import { facilityHealth, SimBackend } from "@merge/facility";
import { closeThenRemove } from "@merge/facility/testing";
import type { BrowserContext } from "playwright-core";
import { builtUi } from "./built-ui.ts";
import { launchChromium, onPage, pageErrors, signIn, skipWithoutChromium } from "./chromium.ts";

const skip = skipWithoutChromium;
const ERROR = "sim: the imaging server is unplugged";

let base: string | undefined;
let stack: PortalStack | undefined;
let browser: BrowserContext | undefined;
const backend = new SimBackend({
  durations: { imaging: 5, power: 2, network: 1, infrapod: 2 },
  failures: [{ method: "nodeSetup", message: ERROR }],
});

before(async () => {
  if (skip) return;
  base = await mkdtemp(join(tmpdir(), "merge-web-health-"));
  const ui = await builtUi(base);
  stack = await startPortalStack(base, backend, { plugins: [ui] });
  const source = await readFile(new URL("../../../examples/demo.ts", import.meta.url), "utf8");
  await stack.accepted("ops", "demo", source, "ts");
  browser = await launchChromium(join(base, "profile"));
});

after(() => closeThenRemove(base, browser, stack));

test("the admin page lists a facility's failed actions with their errors", { skip, timeout: 150_000 }, async () => {
  const s = stack as PortalStack;
  const up = await s.mrg(["materialize", "r1.demo.ops", "--timeout", "60"]);
  assert.notEqual(up.code, 0, "the materialization fails");
  // What the facility itself recorded: the page must show the same actions.
  const recorded = (await facilityHealth(s.store)).failed;
  assert.ok(recorded.length > 0 && recorded.every((a) => a.error === ERROR), JSON.stringify(recorded));

  await onPage(browser as BrowserContext, "/tmp/merge-web-health-failure.png", async (page, problems) => {
    await page.goto(`${s.portal.url}/ui/`);
    await signIn(page, "admin", s.portal.admin.password as string);
    await page.getByRole("link", { name: "Admin", exact: true }).click();
    const table = page.getByTestId("health-failed");
    await table.locator("tbody tr").first().waitFor();
    const rows = await table.locator("tbody tr").allTextContents();
    assert.equal(rows.length, recorded.length, rows.join("\n"));
    for (const a of recorded)
      assert.ok(
        rows.some((r) => r.includes(`${a.task}/${a.action}`) && r.includes(a.mzid) && r.includes(ERROR)),
        `${a.task}/${a.action} in ${rows.join("\n")}`,
      );
    assert.match(
      (await page.getByTestId("health-warnings").textContent()) ?? "",
      /facility phobos: .*failed: sim: the imaging/,
    );
    await page.screenshot({ path: "/tmp/merge-web-health-failed.png", fullPage: true });
    assert.deepEqual(pageErrors(problems), []);
  });
});
