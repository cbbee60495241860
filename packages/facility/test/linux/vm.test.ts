/**
 * VM nodes on the linux data plane: QEMU (TCG here, no /dev/kvm) booted from
 * Debian's kernel and the guest image, on the same links as containers.
 * Boots are slow under TCG on a shared host: the waits are generous.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { openStore } from "@merge/store";
import type { Constraint } from "@merge/xir";
import type { ActionContext, InfrapodSpec, NodeSpec } from "../../src/backend.ts";
import { LinuxBackend } from "../../src/linux/backend.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { accel, vmCap, vmPid, vmProfileOf } from "../../src/linux/vm.ts";
import { guestKernel } from "../../src/linux/vm-image.ts";
import { NodeOps } from "../../src/node-ops.ts";
import { keys, type MzInfo } from "../../src/task.ts";
import {
  experiment,
  isClean,
  leftovers,
  link,
  localPlan,
  node,
  pairOnBackend,
  qemuSkip,
  suiteHarness,
} from "./fixture.ts";

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
  const h = suiteHarness();

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
    assert.deepEqual(spec?.op === "node.setup" && [spec.node.kind, spec.node.interfaces.map((i) => i.model)], [
      "vm",
      ["e1000"],
    ]);
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

  test("as rex drives it: a VM node (kind vm, rtl8139) beside a container, emulated link, its profile renewed by a power cycle, recycle leaves nothing", async () => {
    const b = LinuxBackend.over(h.dp);
    const logs: string[] = [];
    const ctx: ActionContext = { signal: new AbortController().signal, log: (m) => logs.push(m) };
    const mzid = h.mzid("rexvm");
    const infranet = { vni: 9, subnet: "172.30.0.0/16", gateway: "172.30.0.1" };
    const pod: InfrapodSpec = { mzid, vindex: 0, server: "ifr0", infranet, emulation: mzid };
    await b.infrapodEnclave(pod, ctx);
    await b.infrapodServices(pod, ctx);
    const spec = (node: string, address: string, addr: string, vm: boolean): NodeSpec => ({
      mzid,
      resource: "hv0",
      node,
      mode: "virtual",
      ...(vm ? { kind: "vm" as const } : {}),
      alloc: { cores: 1, memory: 256 * 2 ** 20, disk: 0 },
      infranet: { ...infranet, address, port: "eth0" },
      interfaces: [{ socket: 0, port: "eth1", addrs: [addr], virtual: true, ...(vm ? { model: "rtl8139" } : {}) }],
      routes: [],
    });
    const na = spec("a", "172.30.0.2", "10.0.0.1/24", true);
    const nb = spec("b", "172.30.0.3", "10.0.0.2/24", false);
    const { link, emu } = await pairOnBackend(b, ctx, pod, [na, nb], 5_000_000);
    assert.ok(
      logs.some((l) => /VM a on hv0 configured \((tcg|kvm), 1 cores, 256 MiB, NICs virtio, rtl8139\)/.test(l)),
      logs.join("\n"),
    );
    const drv = await h.dp.run(mzid, "a", ["sh", "-c", "basename $(readlink /sys/class/net/eth1/device/driver)"]);
    assert.equal(drv.stdout.trim(), "8139cp");
    const ping = await h.dp.run(mzid, "b", ["ping", "-c", "2", "-W", "5", "a"]);
    assert.equal(ping.code, 0, ping.stdout);
    assert.match(ping.stdout, /PING a \(10\.0\.0\.1\)/);
    const prefix = prefixOf(mzid);
    // A power cycle through the facility's node operations renews the node status's profile (the
    // record says what the VM has after the boot, not what setup found): the stale one is replaced.
    const store = openStore(`sqlite://${join(h.dataDir, "store")}`);
    try {
      const info: MzInfo = {
        mzid,
        vindex: 0,
        phase: "materializing",
        nodes: [{ node: "a", resource: "hv0" }],
        links: [],
        created: new Date().toISOString(),
        profiles: { a: { kind: "vm", accel: "stale", cores: 9 } as never },
      };
      await store.put(keys.info(mzid), JSON.stringify(info));
      const rec = { resource: "hv0", current: "ready", target: "ready", mzid, node: "a", updated: "" };
      await store.put(keys.node("hv0"), JSON.stringify(rec));
      const ops = new NodeOps(store, b);
      assert.equal((await ops.power(mzid, "a", "cycle")).state, "on");
      const after = JSON.parse((await store.get(keys.info(mzid)))!.value) as MzInfo;
      assert.deepEqual(after.profiles?.a, { kind: "vm", ...vmProfileOf(h.dp.env, prefix, "a") });
      assert.equal(after.profiles?.a?.cores, 1);
    } finally {
      await store.close();
    }
    const pid = vmPid(h.dp.env, prefix, "a")!;
    // (Emulation first: a recycled node's namespace takes its link's veths with it.)
    await b.emulationDestroy(emu, ctx);
    await b.linkDestroy(link, ctx);
    await b.nodeRecycle(na, ctx);
    assert.ok(await gone(pid), "recycle stops the VM's QEMU");
    await b.nodeRecycle(nb, ctx);
    await b.infrapodDestroy(pod, ctx);
    const left = await leftovers(prefix, h.dataDir);
    assert.ok(isClean(left), JSON.stringify(left));
  });

  test("a CPU-capped VM runs at its cap: a busy loop's progress against an uncapped VM beside it", async () => {
    const mzid = h.mzid("cap");
    const vm = (name: string) => {
      const n = node(name, []);
      n.constraints.push(c("virt.kind", "vm"), c("proc.cores", 1));
      return n;
    };
    await h.dp.materialize(localPlan(experiment("cap", [vm("fast"), vm("slow")], []), mzid));
    const prefix = prefixOf(mzid);
    // Capped once booted (a boot at 5% of a core would take minutes under TCG).
    vmCap(h.dp.env, prefix, "slow", 0.05);
    assert.equal(vmProfileOf(h.dp.env, prefix, "slow")?.cpuCap, 0.05);
    const quota = h.dp.capabilities.cgroup.cpu
      ? readFileSync(`${h.dp.capabilities.cgroup.cpu}/${prefix}-slow/cpu.cfs_quota_us`, "utf8").trim()
      : undefined;
    if (quota !== undefined) assert.equal(quota, "5000", "5% of one core: 5 ms per 100 ms period");
    // Both loops run at once for 8 s of guest time; the capped one gets 5% of a host core.
    const loop = "i=0; end=$(( $(date +%s) + 8 )); while [ $(date +%s) -lt $end ]; do i=$((i+1)); done; echo $i";
    const [fast, slow] = await Promise.all(
      ["fast", "slow"].map((n) => h.dp.run(mzid, n, ["sh", "-c", loop]).then((r) => Number(r.stdout.trim()))),
    );
    assert.ok(fast! > 0 && slow! >= 0, `${fast} ${slow}`);
    assert.ok(slow! < fast! * 0.5, `capped ${slow} iterations, uncapped ${fast}: the cap did not hold`);
    console.log(`busy loop in 8 s: uncapped ${fast}, capped at 5% ${slow} (${((100 * slow!) / fast!).toFixed(1)}%)`);
    await h.dp.dematerialize(mzid);
  });
});
