// Logging into nodes with one's own key: the project's members reach the facility
// in the materialization's plan (uids and public keys only), foundry installs them
// on every node and starts the Debian image's sshd. From the host, a real
// `ssh -J jump,x0-p c0` (the jump host, then the attached XDC) runs as the member
// on the node; the XDC pings the other node by name and logs into it with the
// member's merge key; a key the portal does not have is refused by the node. Needs root, network namespaces, wireguard-go, sshd
// and the Debian image; skipped otherwise.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { skip as linuxSkip } from "@merge/facility/testing/linux";
import { attachScene, DEBIAN_PAIR as MODEL } from "./attach-stack.ts";

const skip =
  linuxSkip ||
  (!existsSync("/var/cache/merge/images/bookworm/usr/sbin/sshd") &&
    "the Debian image is not built (scripts/setup.sh)") ||
  (!existsSync("/usr/bin/wireguard-go") && "wireguard-go is not installed (scripts/setup.sh)") ||
  (!existsSync("/usr/sbin/sshd") && "needs sshd (openssh-server; scripts/setup.sh)");

function ssh(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("ssh", args, { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe("ssh into nodes from an attached XDC", { skip }, () => {
  const bookwormWithJump = () => ({ jump: true, defaultImage: "bookworm" });
  const { tmp, mz: MZ, xdc: XDC, stack } = attachScene("mrg-xdc-node-ssh-", MODEL, bookwormWithJump);

  test("ssh -J jump,xdc c0 as the member with their key; ping c1 by name; another key is refused", {
    timeout: 400_000,
  }, async () => {
    const a = stack();
    const cfg = (a.ssh as { config: string }).config;
    const up = await a.mrg(["materialize", MZ, "--timeout", "300"]);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    assert.equal((await a.mrg(["xdc", "new", XDC])).code, 0);
    const att = await a.mrg(["xdc", "attach", XDC, MZ]);
    assert.equal(att.code, 0, att.stderr);
    const hostname = XDC.replace(".", "-");

    // The jump host learns of the XDC with the account sync that follows the create.
    let into = await ssh(["-F", cfg, hostname, "id -un"]);
    for (let i = 0; i < 50 && into.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      into = await ssh(["-F", cfg, hostname, "id -un"]);
    }
    assert.equal(into.code, 0, into.stderr);
    assert.equal(into.stdout.trim(), "admin");

    // The node, through the jump host and the XDC (whose sshd resolves c0 through the infrapod's DNS).
    const node = await ssh(["-F", cfg, "-J", `merge-jump,${hostname}`, "c0", "hostname; id -un; id -u; ls -ld $HOME"]);
    assert.equal(node.code, 0, node.stderr);
    const [h, user, uid, home] = node.stdout.trim().split("\n");
    assert.equal(h, "c0");
    assert.equal(user, "admin");
    assert.ok(Number(uid) >= 20000, `the portal's uid, got ${uid}`);
    assert.match(home ?? "", /admin/);
    // From the XDC: ping the other node by name.
    const ping = await ssh(["-F", cfg, hostname, "ping -c 2 -i 0.2 -W 2 c1"]);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    // And ssh to a node from inside the XDC, with nothing copied in: the merge key the portal made in the
    // member's home (theirs, 0600), which the nodes accept.
    const inside = await ssh([
      "-F",
      cfg,
      hostname,
      "stat -c '%a %U' ~/.ssh/merge_key; ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new c0 'hostname; id -un'",
    ]);
    assert.equal(inside.code, 0, inside.stdout + inside.stderr);
    assert.deepEqual(inside.stdout.trim().split("\n"), ["600 admin", "c0", "admin"]);

    // A key the portal does not have gets no further than the node's sshd.
    const other = join(tmp, "ssh", "other");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    // The hops keep the member's key; only the node is offered the other one.
    const cfg2 = join(tmp, "ssh", "config-other");
    writeFileSync(
      cfg2,
      `${readFileSync(cfg, "utf8").replace("Host *\n", `Host merge-jump ${hostname}\n`)}Host c0\n  User admin\n  IdentityFile ${other}\n  IdentitiesOnly yes\n  BatchMode yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n`,
    );
    const refused = await ssh(["-F", cfg2, "-J", `merge-jump,${hostname}`, "c0", "true"]);
    assert.notEqual(refused.code, 0, "a key not in the portal logged in");
    assert.match(refused.stderr, /Permission denied/);

    const down = await a.mrg(["dematerialize", MZ, "--timeout", "180"]);
    assert.equal(down.code, 0, down.stderr + down.stdout);
  });
});
