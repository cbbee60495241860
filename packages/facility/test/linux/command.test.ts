import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";
import { IprouteBatch } from "../../src/linux/command.ts";
import { skip } from "./fixture.ts";

describe("iproute2 batches", { skip }, () => {
  const ns = `mgb${randomBytes(3).toString("hex")}-t`;
  after(() => {
    spawnSync("ip", ["netns", "del", ns]);
  });

  test("callers in the same tick share a batch; each gets its own errors; ensure-style repeats are harmless", async () => {
    const ip = new IprouteBatch("ip");
    await ip.submit([`netns add ${ns}`]);
    const inNs = new IprouteBatch("ip", ns);
    const results = await Promise.allSettled([
      inNs.submit(["link add name d0 type bridge", "link add name d0 type bridge"]),
      inNs.submit(["link set dev nosuch up"], { tolerant: false }),
      inNs.submit(["link add name d1 type bridge"]),
    ]);
    assert.equal(results[0]?.status, "fulfilled", "a repeated add is already the target state");
    assert.equal(results[1]?.status, "rejected");
    assert.match(
      String((results[1] as PromiseRejectedResult).reason),
      /ip -n .*: link set dev nosuch up: .*Cannot find device/,
    );
    assert.equal(results[2]?.status, "fulfilled");
    const links = spawnSync("ip", ["-n", ns, "-o", "link"], { encoding: "utf8" }).stdout;
    assert.match(links, /\bd0\b/);
    assert.match(links, /\bd1\b/, "lines after a failed one still ran (-force)");
  });

  test("a line iproute2 cannot parse stops the batch; that is never taken as harmless", async () => {
    const inNs = new IprouteBatch("ip", ns);
    await assert.rejects(
      inNs.submit(["link add name d2 netns nonexistent-ns-zz type bridge"]),
      /batch stopped|Invalid "netns"/,
    );
  });
});
