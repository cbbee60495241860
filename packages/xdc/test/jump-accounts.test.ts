// The jump host's account files change while people connect: sshd (re-executed for each connection) reads
// /etc/passwd for its privilege separation user before the key exchange, so a file seen empty mid-rewrite
// reset that connection ("kex_exchange_identification: Connection reset by peer"). Every connection made
// while accounts change gets the jump host's answer.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type JumpAccount, JumpHost } from "../src/index.ts";
import { freePort } from "./fixture.ts";

const sshd = process.env.MERGE_SSHD ?? "/usr/sbin/sshd";
const skip = process.getuid?.() !== 0 ? "needs root" : !existsSync(sshd) ? "needs sshd (openssh-server)" : false;

let tmp: string;
let jump: JumpHost;
let port: number;
before(async () => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), "merge-jump-accounts-"));
  port = await freePort();
  jump = await JumpHost.start({ dir: join(tmp, "jump"), port, sshd });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(tmp, "key")]);
});
after(async () => {
  await jump?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function connect(): Promise<string> {
  return new Promise((resolve) =>
    execFile(
      "ssh",
      [
        ...["-i", join(tmp, "key"), "-p", String(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"],
        ...["-o", `UserKnownHostsFile=${join(tmp, "known_hosts")}`, "alice@127.0.0.1", "id"],
      ],
      { timeout: 30_000 },
      (_e, stdout, stderr) => resolve(`${stdout}${stderr}`),
    ),
  );
}

test("connections made while the accounts change all reach the jump host", { skip }, async () => {
  const pub = readFileSync(join(tmp, "key.pub"), "utf8").trim();
  const target = { id: "x0.p", hostname: "x0-p", address: "127.0.0.1" };
  const alice: JumpAccount = { name: "alice", uid: 20001, keys: [pub], targets: [target] };
  // Another user's account comes and goes: the files change length each time.
  const others = (k: number): JumpAccount[] =>
    Array.from({ length: k % 2 ? 40 : 0 }, (_, i) => ({
      name: `u${i}`,
      uid: 21000 + i,
      keys: [pub],
      targets: [target],
    }));
  const answers: string[] = [];
  for (let round = 0; round < 4; round++) {
    const inFlight = Array.from({ length: 6 }, connect);
    const end = Date.now() + 1500;
    for (let k = 0; Date.now() < end; k++) {
      jump.update([alice, ...others(k)]);
      await new Promise((r) => setImmediate(r));
    }
    answers.push(...(await Promise.all(inFlight)));
  }
  const failed = answers.filter((a) => !/jump host/.test(a));
  assert.deepEqual(failed, [], `${failed.length} of ${answers.length} connections did not reach the jump host`);
});
