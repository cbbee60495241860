/**
 * Nodes removed in batches (recycle.ts): removals asked at once share one look
 * through /proc, and each takes every process of its node's namespace (its
 * init by pid file, and one that escaped it) and the namespace, but nothing of
 * another materialization's nodes and none of our own iproute2 processes
 * visiting a namespace.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { run } from "../../src/linux/command.ts";
import { nodeDir } from "../../src/linux/container.ts";
import { namesOf, prefixOf } from "../../src/linux/names.ts";
import { alive, listNetns } from "../../src/linux/processes.ts";
import { NodeRemover } from "../../src/linux/recycle.ts";
import { skip, suiteHarness } from "./fixture.ts";

describe("node removal in batches", { skip }, () => {
  const h = suiteHarness();
  const started: ChildProcess[] = [];

  /** A process in a node's namespace (`ip netns exec` execs it: a sleep, child of this process). */
  const inNode = (ns: string): number => {
    const c = spawn("ip", ["netns", "exec", ns, "sleep", "600"], { stdio: "ignore" });
    started.push(c);
    if (!c.pid) throw new Error(`could not start a process in ${ns}`);
    return c.pid;
  };
  /** Wait until a spawned `ip netns exec` has become its command (it is in the namespace from then on). */
  const entered = async (pid: number) => {
    for (let k = 0; k < 100; k++) {
      const r = await run("readlink", [`/proc/${pid}/exe`]);
      if (!r.stdout.trim().endsWith("/ip")) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it("takes every process and the namespace of each node asked, and nothing else", async () => {
    const a = prefixOf(h.mzid("removea"));
    const b = prefixOf(h.mzid("removeb"));
    const env = h.dp.env;
    const nodes = [
      { prefix: a, node: "a1" },
      { prefix: a, node: "a2" },
      { prefix: a, node: "a3" },
    ];
    const other = { prefix: b, node: "a1" };
    const ns = (x: { prefix: string; node: string }) => namesOf(x.prefix).node(x.node);
    try {
      for (const x of [...nodes, other]) await run("ip", ["netns", "add", ns(x)]);
      // Each node: an "init" its pid file names, and a process that escaped it; a2 also has an iproute2 of ours.
      const pids = new Map<string, number[]>();
      for (const x of [...nodes, other]) {
        const init = inNode(ns(x));
        const stray = inNode(ns(x));
        await entered(init);
        await entered(stray);
        mkdirSync(join(nodeDir(env, x.prefix, x.node), "upper"), { recursive: true });
        writeFileSync(join(nodeDir(env, x.prefix, x.node), "pid"), `${init}\n`);
        pids.set(ns(x), [init, stray]);
      }
      const tool = spawn("ip", ["-n", ns(nodes[1]!), "monitor", "link"], { stdio: "ignore" });
      started.push(tool);
      await new Promise((r) => setTimeout(r, 100));

      const remover = new NodeRemover(env);
      await Promise.all(nodes.map((x) => remover.remove(x.prefix, x.node)));

      const names = new Set(listNetns());
      for (const x of nodes) {
        assert.ok(!names.has(ns(x)), `${ns(x)} is gone`);
        for (const pid of pids.get(ns(x)) ?? []) assert.ok(!alive(pid), `process ${pid} of ${x.node} ended`);
      }
      assert.ok(names.has(ns(other)), "the other materialization's node keeps its namespace");
      for (const pid of pids.get(ns(other)) ?? []) assert.ok(alive(pid), `its process ${pid} runs on`);
      assert.ok(tool.pid && alive(tool.pid), "our own iproute2 in a removed node's namespace is left alone");

      // Again: nothing left to do, no error.
      await remover.remove(a, "a1");
    } finally {
      for (const c of started) if (c.pid && alive(c.pid)) c.kill("SIGKILL");
    }
  });
});
