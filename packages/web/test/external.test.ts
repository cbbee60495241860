/**
 * External links in the materialization view, in Debian's chromium: a real
 * portal with the web UI over two facilities (phobos and deimos, each its own
 * process on the sim backend, an interconnect between them). Four bare-metal
 * nodes in a line do not fit one facility, so the realization crosses and
 * marks a link external; materialized from the page, the view shows that
 * link's EXTERNAL badge naming the facility across and the warning that its
 * traffic crosses shared wide-area links, as the API's status says.
 * Screenshot: /tmp/merge-web-mz-external.png.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { compiledHere, LINE4, type MultiStack, startMulti } from "@merge/e2e/multi-fixture";
import type { MaterializationStatus } from "@merge/portal/client";
import type { BrowserContext } from "playwright-core";
import { builtUi } from "./built-ui.ts";
import { launchChromium, onPage, pageErrors, signIn, skipWithoutChromium } from "./chromium.ts";

const skip = skipWithoutChromium;
let base: string | undefined;
let stack: MultiStack | undefined;
let browser: BrowserContext | undefined;

before(async () => {
  if (skip) return;
  base = await mkdtemp(join(tmpdir(), "merge-web-ext-"));
  const ui = await builtUi(base);
  stack = await startMulti({ backend: "sim", plugins: [ui] });
  // Compiled here: a loaded machine's portal may give up on compiling it, which is not what this is about.
  await stack.accepted("lab", "line", JSON.stringify(await compiledHere(LINE4)), "xir");
  browser = await launchChromium(join(base, "profile"));
});

after(async () => {
  await browser?.close().catch(() => {});
  await stack?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

test("the materialization view marks an external link and warns of shared wide-area links", {
  skip,
  timeout: 240_000,
}, async () => {
  const s = stack as MultiStack;
  await onPage(browser as BrowserContext, "/tmp/merge-web-mz-external-failure.png", async (page, problems) => {
    await page.goto(`${s.portal.url}/ui/projects/lab/experiments/line/realizations/r1`);
    await signIn(page, "admin", s.portal.admin.password as string);
    await page.locator("[data-testid=realization][data-state=accepted]").waitFor();
    await page.getByRole("button", { name: "Materialize" }).click();
    await page.locator("[data-testid=materialization][data-status=active]").waitFor({ timeout: 180_000 });

    const shown = await s.mrg(["show", "materialization", "r1.line.lab", "--json"]);
    assert.equal(shown.code, 0, shown.stderr);
    const status = JSON.parse(shown.stdout) as MaterializationStatus;
    const external = status.links.filter((l) => l.external?.length);
    assert.ok(external.length >= 1, `the API marks a link external: ${JSON.stringify(status.links)}`);
    // Each facility's part of an external link is a row of its own, each with its badge naming the other side.
    for (const name of new Set(external.map((l) => l.link))) {
      const badges = await page.getByTestId(`mz-link-${name}-external`).allTextContents();
      const parts = external.filter((l) => l.link === name);
      assert.deepEqual(
        badges.map((b) => b.trim()).sort(),
        parts.map((l) => `EXTERNAL to ${l.external?.join(", ")}`).sort(),
        `link ${name}'s badges`,
      );
    }
    // Links within one facility carry no badge.
    for (const l of status.links.filter((x) => !x.external?.length))
      assert.equal(await page.getByTestId(`mz-link-${l.link}-external`).count(), 0, `${l.link} is not external`);
    assert.match(
      (await page.getByTestId("mz-external-warning").textContent()) ?? "",
      /their traffic crosses shared wide-area links/,
    );
    await page.screenshot({ path: "/tmp/merge-web-mz-external.png", fullPage: true });
    // As the other browser tests: no page error or CSP violation (a 404 for the materialization before it exists is expected).
    assert.deepEqual(pageErrors(problems), []);
  });
});
