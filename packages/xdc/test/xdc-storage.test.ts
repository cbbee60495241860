// /home/<user> and /proj/<project> are the same files in the XDC and on every node of the
// project's materializations: a portal, a facility on the linux backend with the portal's
// storage, an XDC host, in this process. A file written on a node is read in the XDC and the
// other way round, owners are the portal's uids, and dematerialize and delete leave no mount
// of the portal's directories anywhere. Needs root, network namespaces and the Debian image.
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { LINUX_PAIR as MODEL } from "@merge/e2e/portal-stack";
import { skip as linuxSkip, mountsWhere } from "@merge/facility/testing/linux";
import { attachScene } from "./attach-stack.ts";

const skip =
  linuxSkip ||
  (!existsSync("/var/cache/merge/images/bookworm/usr/sbin/sshd") && "the Debian image is not built (scripts/setup.sh)");

/** Mounts (in any process's view) on `/proj/<project>` or under `dir`. */
const mountsOf = (project: string, dir: string) =>
  mountsWhere((_, point) => point === `/proj/${project}` || point.startsWith(dir));

describe("XDC and nodes share /home and /proj", { skip }, () => {
  const { tmp, proj, mz: MZ, xdc: XDC, stack, mrg } = attachScene("mrg-xdc-storage-", MODEL);
  const onNode = async (node: string, script: string) => {
    const r = await mrg(["exec", node, MZ, "--", "sh", "-c", script]);
    assert.equal(r.code, 0, `${node}: ${script}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };

  test("a file written on a node is read in the XDC and the other way round; nothing mounted after", {
    timeout: 300_000,
  }, async () => {
    const h = stack().host;
    const projDir = join(tmp, "portal", "proj", proj);
    const up = await mrg(["materialize", MZ, "--timeout", "180"]);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    const made = await mrg(["xdc", "new", XDC]);
    assert.equal(made.code, 0, made.stderr);

    // Node → XDC, in the project directory and in the member's home (as the member, with the portal's uid).
    await onNode("a", `echo from-a > /proj/${proj}/a.txt && su admin -s /bin/sh -c 'echo mine > /home/admin/a.txt'`);
    const read = await h.exec(XDC, [
      "sh",
      "-c",
      `cat /proj/${proj}/a.txt /home/admin/a.txt; stat -c %U /home/admin/a.txt`,
    ]);
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout, "from-a\nmine\nadmin\n");
    // The project's files stay the project's (setgid directory), on the portal's storage.
    assert.equal(statSync(join(projDir, "a.txt")).gid, statSync(projDir).gid);

    // XDC → both nodes.
    const wrote = await h.exec(XDC, ["sh", "-c", `echo from-xdc > /proj/${proj}/x.txt`]);
    assert.equal(wrote.code, 0, wrote.stderr);
    for (const node of ["a", "b"]) {
      assert.equal(await onNode(node, `cat /proj/${proj}/x.txt /proj/${proj}/a.txt`), "from-xdc\nfrom-a\n");
    }
    // Mounted, not copied: the node's /proj/<p> is a mount point.
    assert.match(await onNode("b", "cat /proc/mounts"), new RegExp(` /proj/${proj} `));

    const down = await mrg(["dematerialize", MZ, "--timeout", "180"]);
    assert.equal(down.code, 0, down.stderr + down.stdout);
    const gone = await mrg(["xdc", "delete", XDC]);
    assert.equal(gone.code, 0, gone.stderr);
    // The files stay (they are the portal's); no mount of them is left in any process's view.
    assert.equal(readFileSync(join(projDir, "x.txt"), "utf8"), "from-xdc\n");
    assert.deepEqual(mountsOf(proj, projDir), []);
  });
});
