// A VM node end to end, as an experimenter drives it: `npm start` (linux backend), `mrg push` of
// examples/vm.ts (a QEMU VM with an e1000 NIC and cpu.share 0.5 beside a container), realize onto
// the demo facility's hypervisors, materialize, `mrg show materialization` reports the profile the VM
// got, `mrg exec` into the guest (its own kernel, the NIC model asked, the container across the
// emulated link), `mrg node cycle` it and exec again, dematerialize; afterwards no QEMU is left.
// TCG here (no /dev/kvm) on a loaded 2-core host: the waits are long.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { alive, cliIn, type Stack, startStack, stopStack } from "./fixtures/start-stack.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return "needs root for the linux backend";
  if (!existsSync("/usr/bin/qemu-system-x86_64")) return "needs qemu-system-x86 (scripts/setup.sh installs it)";
  if (!existsSync("/boot") || !readdirSync("/boot").some((f) => f.startsWith("vmlinuz-")))
    return "needs a guest kernel (linux-image-amd64; scripts/setup.sh installs it)";
  return false;
}

/** QEMU processes whose command line names this run's data directory's materialization. */
function qemuOf(tag: string): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
        return cmd.startsWith("qemu-system") && cmd.includes(tag);
      } catch {
        return false;
      }
    })
    .map(Number);
}

interface Shown {
  status: string;
  nodes: {
    node: string;
    power: string;
    profile?: {
      kind: string;
      accel?: string;
      cores?: number;
      memoryMiB?: number;
      cpuCap?: number;
      nics?: { model: string }[];
    };
  }[];
}

describe("a VM node through npm start and mrg", { skip: skipReason() }, () => {
  test("push, realize, materialize, profile in show, exec, power cycle, dematerialize", {
    timeout: 1_800_000,
  }, async () => {
    const tmp = mkdtempSync(join(tmpdir(), "mrg-start-vm-"));
    let stack: Stack | undefined;
    const cog = cliIn("", join(tmp, "cfg"), "cog", tmp);
    try {
      stack = await startStack(join(tmp, "data"), "auto", 0, join(tmp, "cfg"));
      assert.equal(stack.backend, "linux");
      const mrg = cliIn(stack.url, join(tmp, "cfg"), "mrg", tmp);
      const ok = async (args: string[]) => {
        const r = await mrg(args);
        assert.equal(r.code, 0, `mrg ${args.join(" ")}:\n${r.stderr}${r.stdout}`);
        return r.stdout;
      };
      const show = async () => JSON.parse(await ok(["show", "materialization", "r1.vm.admin", "--json"])) as Shown;
      await ok(["login", "admin", "--password", stack.password as string]);
      await ok(["new", "experiment", "vm.admin"]);
      // Compiled here and pushed as XIR: on this loaded host the portal's compile of a TypeScript model
      // can pass its 45 s limit, and the compiler is not what this test is about.
      await ok(["compile", join(root, "examples/vm.ts"), "--out", join(tmp, "vm.json")]);
      await ok(["push", join(tmp, "vm.json"), "vm.admin"]);
      await ok(["realize", "r1.vm.admin", "--accept"]);
      const up = await ok(["materialize", "r1.vm.admin", "--timeout", "1200"]);
      assert.match(up, /r1\.vm\.admin is active: 2 nodes, 1 links?/);

      // The profile the VM got, from the facility's node status through the portal.
      const s = await show();
      const vm = s.nodes.find((n) => n.node === "vm");
      assert.deepEqual(
        { ...vm?.profile, nics: vm?.profile?.nics?.map((n) => n.model) },
        { kind: "vm", accel: "tcg", cores: 1, memoryMiB: 256, cpuCap: 0.5, nics: ["virtio", "e1000"] },
      );
      assert.equal(s.nodes.find((n) => n.node === "ct")?.profile?.kind, "container");
      const table = await ok(["show", "materialization", "r1.vm.admin"]);
      assert.match(table, /│ vm\s+│ vm tcg, 1 core, 256 MiB, CPU cap 0\.5 core, NICs virtio e1000/);

      // Into the guest: its own kernel (Debian's), the e1000 asked, the container across the link.
      const kernel = (await ok(["exec", "vm", "r1.vm.admin", "--", "uname", "-r"])).trim();
      assert.ok(existsSync(`/boot/vmlinuz-${kernel}`), `guest kernel ${kernel}`);
      const drv = await ok([
        "exec",
        "vm",
        "r1.vm.admin",
        "--",
        "sh",
        "-c",
        "basename $(readlink /sys/class/net/eth1/device/driver)",
      ]);
      assert.equal(drv.trim(), "e1000");
      const ping = await ok(["exec", "vm", "r1.vm.admin", "--", "ping", "-c", "2", "ct"]);
      assert.match(ping, /2 packets transmitted, 2 (packets )?received/);

      // Power cycle: the guest boots again from its image (a file made before is gone).
      await ok(["exec", "vm", "r1.vm.admin", "--", "touch", "/tmp/before"]);
      await ok(["node", "cycle", "vm", "r1.vm.admin"]);
      const end = Date.now() + 900_000;
      while ((await show()).nodes.find((n) => n.node === "vm")?.power !== "on") {
        assert.ok(Date.now() < end, "the VM came back on after its power cycle");
        await new Promise((r) => setTimeout(r, 2000));
      }
      const after = await mrg(["exec", "vm", "r1.vm.admin", "--", "ls", "/tmp/before"]);
      assert.notEqual(after.code, 0, "a power cycle boots the image afresh");
      assert.equal((await ok(["exec", "vm", "r1.vm.admin", "--", "hostname"])).trim(), "vm");

      await ok(["dematerialize", "r1.vm.admin", "--timeout", "300"]);
      assert.deepEqual(qemuOf(tmp), [], "no QEMU process left");
      await ok(["relinquish", "r1.vm.admin"]);
      assert.equal(await stopStack(stack), 0, stack.out());
      assert.equal(alive(stack.facility), false);
    } finally {
      if (stack && stack.child.exitCode === null) await stopStack(stack);
      if (stack && alive(stack.facility)) process.kill(stack.facility, "SIGKILL");
      const r = await cog(["host", "sweep", "--all", "--data-dir", join(tmp, "data", "facility", "backend")]);
      assert.equal(r.code, 0, r.stderr);
      for (const pid of qemuOf(tmp)) process.kill(pid, "SIGKILL");
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
