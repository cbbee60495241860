// The interactive shell for real, on the linux data plane: portal (WebSocket) +
// commander (mTLS, bidi gRPC) + driver + LinuxBackend in this process. Piped
// input through `mrg exec <node> <mz>` (a shell, or a command's stdin), a
// command leaving a child in the background, `mrg cp` both ways, a pty shell
// over the WebSocket with a resize, refusals for callers without the right.
// Needs root; skipped otherwise.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { skip } from "@merge/facility/testing/linux";
import { ApiError, PortalClient } from "@merge/portal/client";
import type { Started } from "@merge/portal/main";
import { linuxPairSuite } from "./portal-stack.ts";

describe("interactive shell on the linux backend, through portal and commander", { skip }, () => {
  const pair = linuxPairSuite("mrg-shell-linux-");
  const { tmp, proj, mz: MZ, mrg } = pair;
  let portal: Started;
  let admin: PortalClient;
  before(() => {
    ({ portal, admin } = pair.stack);
  });

  test("piped shell via mrg, pty shell over the WebSocket with resize, refusals", { timeout: 240_000 }, async () => {
    const up = await mrg(["materialize", MZ, "--timeout", "180"]);
    assert.equal(up.code, 0, up.stderr + up.stdout);

    // Piped input (not a TTY): the shell reads it line by line; mrg exits with the shell's code.
    const piped = await mrg(["exec", "a", MZ], "hostname; echo $((6*7)); exit 3\n");
    assert.equal(piped.code, 3, piped.stderr + piped.stdout);
    assert.match(piped.stdout, /^a$/m);
    assert.match(piped.stdout, /^42$/m);

    // A command's stdin is mrg's, closed at its end: `echo hi | mrg exec a … -- cat` ends.
    const cat = await mrg(["exec", "a", MZ, "--", "cat"], "hi\n");
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(cat.stdout, "hi\n");
    const wc = await mrg(["exec", "a", MZ, "--", "wc", "-c"], "x".repeat(300_000));
    assert.equal(wc.code, 0, wc.stderr);
    assert.equal(wc.stdout.trim(), "300000");
    // Empty input: the command sees its end at once, as through the NDJSON exec route (no stdin).
    assert.equal((await mrg(["exec", "a", MZ, "--", "cat"])).code, 0);
    const lines: unknown[] = [];
    for await (const l of admin.exec(proj, "e1", "r1", "a", ["cat"])) lines.push(l);
    assert.deepEqual(lines, [{ exit: 0 }]);
    // A command that leaves a child in the background returns when it exits; the child runs on.
    const t0 = Date.now();
    const bg = await mrg(["exec", "a", MZ, "--", "sh", "-c", "echo started; sleep 300 & exit 4"]);
    assert.equal(bg.code, 4, bg.stderr);
    assert.equal(bg.stdout, "started\n");
    assert.ok(Date.now() - t0 < 20_000, `returned after ${Date.now() - t0} ms`);
    const ps = await mrg(["exec", "a", MZ, "--", "ps"]);
    assert.match(ps.stdout, /sleep 300/);

    // mrg cp: 1 MB of random bytes into a node and back, byte-identical; into a directory; a missing file.
    const file = join(tmp, "blob.bin");
    const blob = randomBytes(1 << 20);
    writeFileSync(file, blob);
    const put = await mrg(["cp", file, "a:/tmp/blob.bin", MZ]);
    assert.equal(put.code, 0, put.stderr);
    const sum = await mrg(["exec", "a", MZ, "--", "sha256sum", "/tmp/blob.bin"]);
    assert.equal(sum.stdout.split(" ")[0], createHash("sha256").update(blob).digest("hex"));
    const back = join(tmp, "back.bin");
    const got = await mrg(["cp", "a:/tmp/blob.bin", back, MZ]);
    assert.equal(got.code, 0, got.stderr);
    assert.ok(readFileSync(back).equals(blob), "the round trip is byte-identical");
    assert.equal((await mrg(["cp", file, "b:/tmp/", MZ])).code, 0);
    assert.match((await mrg(["exec", "b", MZ, "--", "ls", "-l", "/tmp/blob.bin"])).stdout, /1048576/);
    const missing = await mrg(["cp", "a:/tmp/nothing", join(tmp, "nothing"), MZ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nothing/);
    assert.ok(!existsSync(join(tmp, "nothing")) && !existsSync(join(tmp, "nothing.mrg-partial")), "no half file");
    const both = await mrg(["cp", file, back, MZ]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /exactly one side must be node:PATH/);

    // A pty shell over the WebSocket: the window size it starts with, a resize, the exit code.
    let out = "";
    const sh = await admin.shell(
      proj,
      "e1",
      "r1",
      "b",
      { tty: true, size: { rows: 30, cols: 100 } },
      {
        stdout: (b) => {
          out += Buffer.from(b).toString("utf8");
        },
        stderr: (t) => {
          out += t;
        },
      },
    );
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 100 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, re);
    };
    sh.stdin(Buffer.from("[ -t 0 ] && echo on-a-terminal; echo size=$(stty size)\n"));
    await waitFor(/size=30 100/);
    assert.match(out, /^on-a-terminal\r?$/m, "the shell runs on a pty");
    sh.resize({ rows: 50, cols: 132 });
    await new Promise((r) => setTimeout(r, 300));
    sh.stdin(Buffer.from("echo size=$(stty size) host=$(hostname)\n"));
    await waitFor(/size=50 132 host=b/);
    sh.stdin(Buffer.from("exit 7\n"));
    assert.equal(await sh.done, 7);

    // Refusals at the upgrade: no token, another (active) user not in the project.
    const none = { stdout: () => {}, stderr: () => {} };
    await assert.rejects(new PortalClient(portal.url).shell(proj, "e1", "r1", "a", { tty: false }, none), (e) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 401);
      return true;
    });
    const who = `u${randomBytes(3).toString("hex")}`;
    await new PortalClient(portal.url).register({
      name: who,
      email: `${who}@example.org`,
      password: "correct-horse-9",
    });
    await admin.setUserState(who, "active");
    const other = new PortalClient(
      portal.url,
      (await new PortalClient(portal.url).login(who, "correct-horse-9")).token,
    );
    await assert.rejects(other.shell(proj, "e1", "r1", "a", { tty: false }, none), (e) => {
      assert.ok(e instanceof ApiError);
      assert.ok(e.status === 403 || e.status === 404, `status ${e.status}: ${e.message}`);
      return true;
    });
    // An unknown node is refused with the nodes there are.
    const bad = await mrg(["exec", "zz", MZ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no node 'zz' \(nodes: a, b\)/);

    await pair.dematerializeClean(120);
  });
});
