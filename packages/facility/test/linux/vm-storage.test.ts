/**
 * /home/<user> and /proj/<project> on a VM node: the portal's storage over
 * virtio-9p (vm-storage.ts), beside a container node that bind-mounts the same
 * directories. A member's file written in the guest is theirs on the host
 * (passthrough: the guest writer's uid, the project's group) and read on the
 * container node; a file written on the host is read in the guest; another
 * member cannot write into a home that is not theirs; the host gets no mount of
 * the share, and dematerialize leaves no mount of the storage in any process's
 * view. One VM, one boot (TCG).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { NodeAccounts } from "@merge/materialize";
import type { Constraint } from "@merge/xir";
import { ensureMzDir } from "../../src/linux/env.ts";
import { writeAccounts } from "../../src/linux/foundry.ts";
import { foundryDir } from "../../src/linux/infrapod.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { vmDir, vmPid } from "../../src/linux/vm.ts";
import {
  experiment,
  type Harness,
  harness,
  isClean,
  leftovers,
  localPlan,
  mountsWhere,
  node,
  qemuSkip,
} from "./fixture.ts";

const c = (prop: string, value: Constraint["value"]): Constraint => ({ prop, op: "==", value });

/** Mounts (in any process's view) whose source or point is under `dir`. */
/** Whether `pid` is this test process or one of its descendants. */
function descendsFromUs(pid: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === process.pid) return true;
    try {
      p = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      return false;
    }
  }
  return false;
}
const commandOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim().slice(0, 200);
  } catch {
    return "gone";
  }
};
const mountsOf = (dir: string) => mountsWhere((root, point) => root.startsWith(dir) || point.startsWith(dir));

describe("linux data plane: /home and /proj on a VM node (virtio-9p)", { skip: qemuSkip(), timeout: 1_500_000 }, () => {
  const storage = mkdtempSync(join(tmpdir(), "mrg-vm-storage-"));
  const project = `p${randomBytes(3).toString("hex")}`;
  const accounts: NodeAccounts = {
    project,
    gid: 40001,
    users: [
      { name: "alice", uid: 40002, keys: [] },
      { name: "bob", uid: 40003, keys: [] },
    ],
  };
  let h: Harness | undefined;
  let mzid = "";
  const run = async (n: string, script: string) => {
    const r = await (h as Harness).dp.run(mzid, n, ["sh", "-c", script]);
    assert.equal(r.code, 0, `${n}: ${script}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    h = await harness({ storage });
    // The project's directory on a volume of its own, as a project quota puts it (portal/src/project-volume.ts).
    mkdirSync(join(storage, "proj", project), { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "mrg-vm-storage-quota", join(storage, "proj", project)]);
    mzid = h.mzid("vmst");
    // The accounts as the backend writes them (infrapodServices), in the materialization's directory (a tmpfs).
    await ensureMzDir(h.dp.env, prefixOf(mzid));
    writeAccounts(foundryDir(h.dp.env, prefixOf(mzid)), accounts);
    const v = node("v", []);
    v.constraints.push(c("virt.kind", "vm"), c("proc.cores", 1));
    await h.dp.materialize(localPlan(experiment("vmst", [v, node("k", [])], []), mzid), {
      timeoutMs: 900_000,
      vmTimeoutMs: 900_000,
    });
  });
  after(async () => {
    try {
      if (h && mzid) {
        await h.dp.dematerialize(mzid);
        assert.ok(isClean(await leftovers(prefixOf(mzid), h.dataDir)));
      }
      execFileSync("umount", [join(storage, "proj", project)]);
      // A test file running beside this one may copy the host's mounts, ours included, into a namespace it
      // is setting up (a container before its pivot_root drops them): such a copy goes within moments.
      for (const end = Date.now() + 10_000; mountsOf(storage).length && Date.now() < end; )
        await new Promise((r) => setTimeout(r, 200));
      // Ours (this process's descendants: the VM, its helpers) must hold none; a long-lived namespace of
      // a test beside this one that copied the host's mounts is that test's, and only named.
      const held = mountsOf(storage).map((m) => ({ m, pid: Number(m.split(":")[0]) }));
      const ours = held.filter((x) => descendsFromUs(x.pid)).map((x) => `${x.m} (${commandOf(x.pid)})`);
      for (const x of held.filter((y) => !descendsFromUs(y.pid)))
        console.error(`vm-storage: a copy of the storage's mount held by ${x.pid} (${commandOf(x.pid)}), not ours`);
      assert.deepEqual(ours, [], "no process of ours keeps a mount of the storage");
      await h?.close();
    } finally {
      rmSync(storage, { recursive: true, force: true });
    }
  });

  test("a member's file from the guest is theirs on the host and read on a container node; the host's is read in the guest", async () => {
    const projDir = join(storage, "proj", project);
    // Mounted in the guest: 9p at /home/alice and /proj/<p>.
    const mounts = await run("v", "cat /proc/mounts");
    if (!mounts.includes(`/proj/${project}`)) {
      const pid = vmPid((h as Harness).dp.env, prefixOf(mzid), "v");
      const qemu = pid ? readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ") : "no QEMU";
      const guest = await run(
        "v",
        "cut -d' ' -f1 /proc/modules | tr '\\n' ' '; ls /sys/bus/virtio/drivers; cat /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag; dmesg | grep -i -e 9p -e netfs -e fscache | tail",
      );
      assert.fail(`no 9p mount in the guest; QEMU: ${qemu}; guest: ${guest}`);
    }
    assert.match(mounts, new RegExp(`^mrgstorage /proj/${project} 9p `, "m"));
    assert.match(mounts, /^mrgstorage \/home\/alice 9p /m);

    await run("v", `su -s /bin/sh alice -c 'echo from-vm > /proj/${project}/vm.txt; echo mine > /home/alice/vm.txt'`);
    assert.equal(readFileSync(join(projDir, "vm.txt"), "utf8"), "from-vm\n");
    const p = statSync(join(projDir, "vm.txt"));
    assert.deepEqual([p.uid, p.gid], [40002, 40001], "alice's file, the project's group (setgid directory)");
    const home = statSync(join(storage, "home", "alice", "vm.txt"));
    assert.deepEqual([home.uid, home.gid], [40002, 40002]);

    // Host → guest, and the guest's file on the container node.
    writeFileSync(join(projDir, "host.txt"), "from-host\n");
    chownSync(join(projDir, "host.txt"), 40003, 40001);
    assert.equal(
      await run("v", `cat /proj/${project}/host.txt; stat -c %U /proj/${project}/host.txt`),
      "from-host\nbob\n",
    );
    assert.equal(await run("k", `cat /proj/${project}/vm.txt /home/alice/vm.txt`), "from-vm\nmine\n");

    // Modes hold in the guest: bob cannot write in alice's home; the share itself is read-only.
    const r = await (h as Harness).dp.run(mzid, "v", [
      "su",
      "-s",
      "/bin/sh",
      "bob",
      "-c",
      "echo x > /home/alice/bob.txt",
    ]);
    assert.notEqual(r.code, 0, "bob wrote into alice's home");
    assert.equal(statSync(join(storage, "home", "alice")).uid, 40002);
    assert.deepEqual(readdirSync(join(storage, "home", "alice")).sort(), ["vm.txt"]);

    // The share is QEMU's alone: no mount of it on the host.
    assert.deepEqual(
      mountsOf(join(vmDir((h as Harness).dp.env, prefixOf(mzid), "v"), "storage")).filter((m) =>
        m.startsWith(`${process.pid}:`),
      ),
      [],
    );
  });

  test("past the project's volume a write fails with ENOSPC on the VM and on the container node; nothing else breaks", async () => {
    for (const n of ["v", "k"]) {
      const r = await (h as Harness).dp.run(mzid, n, [
        "su",
        "-s",
        "/bin/sh",
        "alice",
        "-c",
        `dd if=/dev/zero of=/proj/${project}/big-${n} bs=1024 count=4096 2>&1`,
      ]);
      assert.notEqual(r.code, 0, `${n}: a 4 MiB write fit a 2 MiB volume`);
      assert.match(r.stdout + r.stderr, /No space left on device/, n);
      await run(n, `rm /proj/${project}/big-${n}`);
      assert.equal(await run(n, `echo ok > /proj/${project}/after-${n}; cat /proj/${project}/after-${n}`), "ok\n");
      assert.equal(await run(n, "echo ok > /tmp/t; cat /tmp/t"), "ok\n", `${n}: its own files unaffected`);
    }
    assert.equal(readFileSync(join(storage, "proj", project, "after-v"), "utf8"), "ok\n");
  });
});
