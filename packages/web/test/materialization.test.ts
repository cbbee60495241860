/**
 * The materialization view end to end, in Debian's chromium: a real portal
 * serving the UI and a real facility (commander, driver, rex) on the sim
 * backend, in this process. A model with an emulated link whose direction
 * toward `a` is set apart is pushed and realized through the API; in the
 * browser it is materialized, its nodes table shows each node's addresses,
 * infranet address and image, its links table shows each direction, the
 * emulation is changed toward `b` through the form (and refused there when out
 * of range), and nodes are powered through their buttons. The API's status and
 * the sim facility's own state must agree with what the page shows.
 * Screenshots land in /tmp/merge-web-mz-*.png.
 */
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type PortalStack, startPortalStack } from "@merge/e2e/portal-stack";
import { SimBackend, type SimMethod } from "@merge/facility";
import { closeThenRemove } from "@merge/facility/testing";
import type { MaterializationStatus } from "@merge/portal/client";
import { emulationToward } from "@merge/xir";
import type { BrowserContext, Page } from "playwright-core";
import { builtUi } from "./built-ui.ts";
import { launchChromium, onPage, pageErrors, signIn, skipWithoutChromium } from "./chromium.ts";

const skip = skipWithoutChromium;
const MS = 1e6; // the facility keeps latency in ns
const SOURCE = `import { addressing, cores, gb, image, latency, memory, ms, Network } from "@merge/model";
const net = new Network("asym", addressing.ipv4);
const a = net.node("a", image("busybox"), cores.ge(1), memory.ge(gb(1)));
const b = net.node("b", image("busybox"), cores.ge(1), memory.ge(gb(1)));
const c = net.node("c", image("busybox"), cores.ge(1), memory.ge(gb(1)));
net.connect([a, b], latency.eq(ms(10))).named("wire").toward(a, latency.eq(ms(30)));
net.connect([b, c]).named("plain");
export default net;
`;

let base: string | undefined;
let stack: PortalStack | undefined;
let browser: BrowserContext | undefined;
/** What the sim facility carried out, in order. */
const calls: { method: SimMethod; target: string }[] = [];
// Power steps take long enough that the page can be seen waiting on one.
const backend = new SimBackend({
  durations: { imaging: 50, power: 400, network: 2, infrapod: 5 },
  onCall: (method, target) => calls.push({ method, target }),
});

before(async () => {
  if (skip) return;
  base = await mkdtemp(join(tmpdir(), "merge-web-mz-"));
  const ui = await builtUi(base);
  stack = await startPortalStack(base, backend, { plugins: [ui] });
  await stack.accepted("lab", "asym", SOURCE, "ts");
  browser = await launchChromium(join(base, "profile"));
});

after(() => closeThenRemove(base, browser, stack));

/** The materialization status as the API reports it. */
async function apiStatus(): Promise<MaterializationStatus> {
  const s = stack as PortalStack;
  const res = await fetch(`${s.portal.url}/projects/lab/experiments/asym/realizations/r1/materialization`, {
    headers: { authorization: `Bearer ${s.admin.token}` },
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as MaterializationStatus;
}

/** What the sim facility's emulator runs for the link `wire`. */
function simWire() {
  const links = [...backend.emulations.values()].flatMap((e) => e.links);
  const wire = links.find((l) => l.link === "wire");
  assert.ok(wire, `the facility emulates wire (it has ${links.map((l) => l.link).join(", ") || "nothing"})`);
  return wire.params;
}

const cell = (page: Page, row: string, field: string) =>
  page.getByTestId(row).locator(`td[data-field=${field}]`).first();

test("links per direction, runtime emulation and node power from the realization page", {
  skip,
  timeout: 150_000,
}, async () => {
  const s = stack as PortalStack;
  await onPage(browser as BrowserContext, "/tmp/merge-web-mz-failure.png", async (page, problems) => {
    await page.goto(`${s.portal.url}/ui/projects/lab/experiments/asym/realizations/r1`);
    await signIn(page, "admin", s.portal.admin.password as string);
    await page.locator("[data-testid=realization][data-state=accepted]").waitFor();
    // What the realization asks of the emulator: the link's latency, and toward a its own.
    const planned = page.getByTestId("link-paths").locator("tr", { hasText: "wire" });
    assert.match((await planned.textContent()) ?? "", /emu\w*, 10 ms.*toward a: 30 ms/);

    // Materialize from the page; it follows the materialization until it is active.
    await page.getByRole("button", { name: "Materialize" }).click();
    await page.locator("[data-testid=materialization][data-status=active]").waitFor({ timeout: 90_000 });
    assert.equal((await apiStatus()).status, "active");

    // Each node's row shows its experiment addresses, infranet address and image, as the API reports them.
    for (const n of (await apiStatus()).nodes) {
      const row = (f: string) => page.getByTestId(`mz-node-${n.node}`).locator(`td[data-field=${f}]`);
      assert.ok(n.addresses?.length && n.infranet, `${n.node} has addresses: ${JSON.stringify(n)}`);
      assert.deepEqual(await row("addresses").locator("div").allTextContents(), n.addresses);
      assert.equal(await row("infranet").textContent(), n.infranet);
      assert.equal(await row("image").textContent(), "busybox");
    }
    assert.equal((await apiStatus()).nodes.find((n) => n.node === "b")?.addresses?.length, 2, "b is on both links");

    // The links table: the link's own values, and its direction toward a set apart.
    const wire = page.getByTestId("mz-link-wire");
    assert.equal(await wire.getAttribute("data-emulated"), "yes");
    assert.equal(await cell(page, "mz-link-wire", "latency").textContent(), "10 ms");
    assert.equal(await cell(page, "mz-link-wire-toward-a", "latency").textContent(), "30 ms");
    assert.match((await wire.textContent()) ?? "", /all directions/);
    assert.equal(await page.getByTestId("mz-link-wire-toward-b").count(), 0, "no direction toward b set apart yet");
    // A link without emulation says so, and has no form.
    assert.equal(await page.getByTestId("mz-link-plain").getAttribute("data-emulated"), "no");
    assert.equal(await page.getByTestId("emulation-plain").count(), 0);
    await page.screenshot({ path: "/tmp/merge-web-mz-links.png", fullPage: true });

    // Change the latency toward b to 50 ms through the form.
    const form = page.getByTestId("emulation-wire");
    await form.locator("summary").click();
    const directions = await form.getByLabel("wire direction").locator("option").allTextContents();
    assert.deepEqual(directions, ["all directions", "toward a", "toward b"]);
    await form.getByLabel("wire latency (ms)").fill("50");
    await form.getByLabel("wire direction").selectOption("b");
    await form.getByRole("button", { name: "Apply" }).click();
    await form.getByRole("status").filter({ hasText: "applied toward b" }).waitFor();
    await cell(page, "mz-link-wire-toward-b", "latency").filter({ hasText: "50 ms" }).waitFor();
    assert.equal(await cell(page, "mz-link-wire", "latency").textContent(), "10 ms");
    assert.equal(await cell(page, "mz-link-wire-toward-a", "latency").textContent(), "30 ms");
    // The API agrees (base units, named), and so does what the facility's emulator runs (ns).
    const emu = (await apiStatus()).links.find((l) => l.link === "wire")?.emulation;
    assert.deepEqual(emu, {
      latencyNs: 10 * MS,
      toward: [
        { node: "a", latencyNs: 30 * MS },
        { node: "b", latencyNs: 50 * MS },
      ],
    });
    assert.equal(emulationToward(simWire(), "b").latency, 50 * MS);
    assert.equal(emulationToward(simWire(), "a").latency, 30 * MS);
    await page.screenshot({ path: "/tmp/merge-web-mz-emulation.png", fullPage: true });

    // When the facility fails the change, the portal's message is shown and the table keeps what runs.
    backend.inject({ method: "emulationUpdate", times: 1, message: "moactld did not answer" });
    await form.getByLabel("wire capacity (Mbit/s)").fill("5");
    await form.getByLabel("wire direction").selectOption("");
    await form.getByRole("button", { name: "Apply" }).click();
    await form.getByRole("alert").filter({ hasText: "moactld did not answer" }).waitFor();
    assert.equal(await cell(page, "mz-link-wire", "capacity").textContent(), "—");
    assert.equal((await apiStatus()).links.find((l) => l.link === "wire")?.emulation?.capacityBps, undefined);
    await form.getByLabel("wire capacity (Mbit/s)").fill("");

    // A loss of 150 % is refused in the form, with a message, and nothing is sent.
    const updates = calls.filter((c) => c.method === "emulationUpdate").length;
    await form.getByLabel("wire loss (%)").fill("150");
    await form.getByRole("button", { name: "Apply" }).click();
    const invalid = form.getByTestId("emulation-invalid");
    await invalid.waitFor();
    assert.match((await invalid.textContent()) ?? "", /Loss '150': give a percentage from 0 to 100/);
    assert.equal(await form.getByLabel("wire loss (%)").getAttribute("aria-invalid"), "true");
    assert.equal(calls.filter((c) => c.method === "emulationUpdate").length, updates);
    assert.equal((await apiStatus()).links.find((l) => l.link === "wire")?.emulation?.lossFraction, undefined);
    await page.screenshot({ path: "/tmp/merge-web-mz-invalid.png", fullPage: true });

    // Power: reboot a; its buttons wait while the facility works, then it is on again.
    const nodes = (await apiStatus()).nodes;
    const resource = (node: string) => nodes.find((n) => n.node === node)?.resource as string;
    const powerCalls = (node: string) =>
      calls.filter((c) => c.method === "nodePower" && c.target === resource(node)).length;
    const rowA = page.getByTestId("mz-node-a");
    assert.equal(await rowA.getAttribute("data-power"), "on");
    await page.getByRole("button", { name: "Reboot a" }).click();
    await page.locator("[data-testid=power-a][data-busy=reboot]").waitFor();
    assert.ok(await page.getByRole("button", { name: "Start a" }).isDisabled(), "buttons wait for the reboot");
    await page.locator("[data-testid=power-a][data-busy='']").waitFor();
    await page.locator("[data-testid=mz-node-a][data-power=on]").waitFor();
    assert.ok(powerCalls("a") >= 1, "the facility powered a");
    assert.equal((await apiStatus()).nodes.find((n) => n.node === "a")?.power, "on");
    assert.equal(backend.nodes.get(resource("a"))?.power, "on");

    // Stop b, then start it again: the page and the API agree each time.
    await page.getByRole("button", { name: "Stop b" }).click();
    await page.locator("[data-testid=mz-node-b][data-power=off]").waitFor();
    assert.equal((await apiStatus()).nodes.find((n) => n.node === "b")?.power, "off");
    await page.getByRole("button", { name: "Start b" }).click();
    await page.locator("[data-testid=mz-node-b][data-power=on]").waitFor();
    assert.equal((await apiStatus()).nodes.find((n) => n.node === "b")?.power, "on");

    // A failure at the facility is shown with the node.
    backend.inject({ method: "nodePower", target: resource("b"), times: 1, message: "BMC did not answer" });
    await page.getByRole("button", { name: "Stop b" }).click();
    await page.getByTestId("power-b").getByRole("alert").filter({ hasText: "BMC did not answer" }).waitFor();
    assert.ok(!(await page.getByRole("button", { name: "Stop b" }).isDisabled()), "the buttons work again");

    // Reimage asks first: declined, nothing happens; accepted, the node is wiped and comes back on.
    const resets = () => calls.filter((c) => c.method === "nodeReset" && c.target === resource("a")).length;
    page.once("dialog", (d) => void d.dismiss());
    await page.getByRole("button", { name: "Reimage a" }).click();
    assert.equal(await page.locator("[data-testid=power-a][data-busy='']").count(), 1);
    assert.equal(resets(), 0);
    let asked = "";
    page.once("dialog", (d) => {
      asked = d.message();
      void d.accept();
    });
    await page.getByRole("button", { name: "Reimage a" }).click();
    await page.locator("[data-testid=power-a][data-busy=reimage]").waitFor();
    await page.locator("[data-testid=power-a][data-busy='']").waitFor();
    assert.match(asked, /Reimage a\? Its disk is wiped/);
    assert.equal(resets(), 1);
    await page.locator("[data-testid=mz-node-a][data-power=on]").waitFor();
    assert.equal((await apiStatus()).nodes.find((n) => n.node === "a")?.power, "on");
    await page.screenshot({ path: "/tmp/merge-web-mz-power.png", fullPage: true });

    assert.deepEqual(pageErrors(problems), []);
  });
});
