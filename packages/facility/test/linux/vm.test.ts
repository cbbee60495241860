/**
 * VM nodes on the linux data plane: QEMU (TCG here, no /dev/kvm) booted from
 * Debian's kernel and the guest image, on the same links as containers.
 * Boots are slow under TCG on a shared host: the waits are generous.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { Constraint } from "@merge/xir";
import { prefixOf } from "../../src/linux/names.ts";
import { accel, vmPid, vmProfileOf } from "../../src/linux/vm.ts";
import { guestKernel } from "../../src/linux/vm-image.ts";
import { experiment, type Harness, harness, isClean, leftovers, link, localPlan, node, skip } from "./fixture.ts";

function qemuSkip(): string | false {
  if (skip) return skip;
  if (!existsSync("/usr/bin/qemu-system-x86_64")) return "VM tests need qemu-system-x86 (scripts/setup.sh installs it)";
  try {
    guestKernel();
  } catch (e) {
    return (e as Error).message;
  }
  return false;
}

const c = (prop: string, value: Constraint["value"]): Constraint => ({ prop, op: "==", value });

/** Live (not zombie) QEMU processes on the host. */
function qemuProcesses(): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, "utf8");
        return stat.includes("(qemu-system") && stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** A killed process can take a moment to be gone from /proc. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50 && qemuProcesses().includes(pid); i++) await new Promise((r) => setTimeout(r, 100));
  return !qemuProcesses().includes(pid);
}

describe("linux data plane: VM nodes", { skip: qemuSkip(), timeout: 1_500_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(async () => {
    await h?.close();
  });

  test("a VM and a container on an emulated link: DHCP hostname, NIC driver, RTT, power cycle, reimage, clean teardown", async () => {
    const mzid = h.mzid("vm");
    const v = node("v", [["10.0.0.1/24"]]);
    v.constraints.push(c("virt.kind", "vm"), c("proc.cores", 1), c("memory.capacity", 256 * 2 ** 20));
    v.sockets[0]!.constraints.push(c("port.model", "e1000"));
    const ct = node("ct", [["10.0.0.2/24"]]);
    const xp = experiment(
      "vm",
      [v, ct],
      [
        link(
          "l",
          [
            ["v", 0],
            ["ct", 0],
          ],
          [c("latency", 10_000_000)],
        ),
      ],
    );
    const fragments = localPlan(xp, mzid);
    const spec = fragments.find((f) => f.op === "node.setup" && f.node.node === "v");
    assert.deepEqual(spec?.op === "node.setup" && spec.node.vm, { nics: { 0: "e1000" } });
    const t0 = Date.now();
    await h.dp.materialize(fragments);
    const bootMs = Date.now() - t0;
    const prefix = prefixOf(mzid);
    const pid = vmPid(h.dp.env, prefix, "v");
    assert.ok(pid, "QEMU runs");

    // The hostname came from the infranet's DHCP (the kernel command line does not carry it).
    assert.equal((await h.dp.run(mzid, "v", ["hostname"])).stdout.trim(), "v");
    const cmdline = await h.dp.run(mzid, "v", ["cat", "/proc/cmdline"]);
    assert.doesNotMatch(cmdline.stdout, /\bv\b/);
    // The guest sees the NIC models asked: virtio on the infranet, e1000 on the link.
    const drv = await h.dp.run(mzid, "v", [
      "sh",
      "-c",
      "for i in eth0 eth1; do basename $(readlink /sys/class/net/$i/device/driver); done",
    ]);
    assert.deepEqual(drv.stdout.trim().split("\n"), ["virtio_net", "e1000"]);
    // Its own kernel: Debian's, not the host's container namespaces.
    assert.equal((await h.dp.run(mzid, "v", ["uname", "-r"])).stdout.trim(), guestKernel().version);

    // VM ↔ container across the emulated link, 10 ms each way.
    const ping = await h.dp.run(mzid, "v", ["ping", "-c", "3", "10.0.0.2"]);
    assert.equal(ping.code, 0, ping.stdout);
    const rtts = [...ping.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
    assert.equal(rtts.length, 3);
    for (const r of rtts) assert.ok(r >= 19.5, `RTT ${r} ms under the emulated 20 ms`);
    const back = await h.dp.run(mzid, "ct", ["ping", "-c", "2", "-W", "5", "10.0.0.1"]);
    assert.equal(back.code, 0, back.stdout);

    // The profile it got, recorded; the QEMU process is confined in its own cgroup.
    const profile = vmProfileOf(h.dp.env, prefix, "v");
    assert.deepEqual(
      { ...profile, nics: profile?.nics.map((n) => n.model) },
      { accel: accel(), cores: 1, memoryMiB: 256, cpuCap: 1, nics: ["virtio", "e1000"] },
    );
    const cg = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    assert.match(cg, new RegExp(`${prefix}-v`));

    // Power cycle (QMP system_reset): the guest boots again from its image.
    await h.dp.run(mzid, "v", ["touch", "/tmp/before-cycle"]);
    await h.dp.power(mzid, "v", "cycle");
    assert.equal(vmPid(h.dp.env, prefix, "v"), pid, "a reset keeps the QEMU process");
    assert.notEqual((await h.dp.run(mzid, "v", ["ls", "/tmp/before-cycle"])).code, 0);
    assert.equal((await h.dp.run(mzid, "v", ["hostname"])).stdout.trim(), "v");
    // Off and on, then reimage: a new QEMU process each time.
    await h.dp.power(mzid, "v", "off");
    assert.equal(h.dp.powerState(mzid, "v"), "off");
    await h.dp.reimage(mzid, "v");
    const again = vmPid(h.dp.env, prefix, "v");
    assert.ok(again && again !== pid);
    assert.equal((await h.dp.run(mzid, "ct", ["ping", "-c", "1", "-W", "5", "10.0.0.1"])).code, 0);

    // exec through the guest agent: stdin in, output and exit status out.
    const child = h.dp.exec(mzid, "v", ["sh", "-c", "cat; exit 3"]);
    let out = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stdin?.end("hello from the host\n");
    const code = await new Promise<number | null>((r) => child.on("close", r));
    assert.equal(out, "hello from the host\n");
    assert.equal(code, 3);

    await h.dp.dematerialize(mzid);
    assert.ok(isClean(await leftovers(prefix, h.dataDir)));
    assert.ok(await gone(again), "no QEMU process left");
    console.log(`VM boot to ready (accel ${accel()}): ${bootMs} ms`);
  });
});
