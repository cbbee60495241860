// (ssh finds ~/.ssh through the passwd entry, not $HOME: every ssh here names its known_hosts file, so the
// test writes nothing into root's ~/.ssh.)
// The way in, for real: OpenSSH's sshd as the jump host, users' keys from the portal, `ssh -J` (through the
// ssh_config `mrg xdc ssh-config` writes) into an XDC, `mrg xdc ssh`, scp, and every refusal on the way.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { imageCache } from "@merge/facility/linux";
import type { PortalClient } from "@merge/portal/client";
import { mrg, startXdcStack, type XdcStack } from "./fixture.ts";

const sshd = process.env.MERGE_SSHD ?? "/usr/sbin/sshd";
const skip =
  process.getuid?.() !== 0
    ? "needs root"
    : !existsSync(join(imageCache(), "bookworm", "usr/sbin/sshd"))
      ? "needs the Debian image (scripts/setup.sh)"
      : !existsSync(sshd)
        ? "needs sshd (openssh-server; scripts/setup.sh)"
        : false;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runIn(home: string, cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, HOME: home }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** A user's own machine: a home with a fresh ed25519 key pair (the private key never leaves it). */
async function machine(tmp: string, name: string): Promise<{ home: string; key: string }> {
  const home = join(tmp, `home-${name}`);
  mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
  const key = join(home, ".ssh", "id_ed25519");
  const r = await runIn(home, "ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key]);
  assert.equal(r.code, 0, r.stderr);
  chmodSync(key, 0o600);
  return { home, key };
}

describe("ssh -J through the jump host into XDCs", { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), "xdc-ssh-"));
  let s: XdcStack;
  let alice: PortalClient;
  let carol: PortalClient;
  let a: { home: string; key: string };
  let c: { home: string; key: string };
  const config = (who: { home: string }) => join(who.home, "merge.ssh_config");
  /** `mrg xdc ssh-config` as `user`, for the machine `who` (its key, its known_hosts). */
  const sshConfig = (user: PortalClient, who: { home: string; key: string }) =>
    mrg(s.portal.url, user.token, ["xdc", "ssh-config", "-i", who.key, "--known-hosts", join(who.home, "known_hosts")]);

  before(async () => {
    s = await startXdcStack(tmp, { jump: true });
    alice = await s.user("alice");
    carol = await s.user("carol");
    a = await machine(tmp, "alice");
    c = await machine(tmp, "carol");
    await alice.createProject({ name: "myproj" });
    await carol.createProject({ name: "carolp" });
  });
  after(async () => {
    try {
      await s?.close();
    } finally {
      if (!process.env.XDC_KEEP) rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("mrg keys add, list (the default key of ~/.ssh); a private key is refused", async () => {
    const env = { HOME: a.home };
    const added = await mrg(s.portal.url, alice.token, ["keys", "add", "--json"], env);
    assert.equal(added.code, 0, added.stderr);
    const fp = (JSON.parse(added.stdout) as { fingerprint: string }).fingerprint;
    const listed = await mrg(s.portal.url, alice.token, ["keys", "list", "--json"], env);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { fingerprint: string }[]).map((k) => k.fingerprint),
      [fp],
    );
    const priv = await mrg(s.portal.url, alice.token, ["keys", "add", a.key], env);
    assert.equal(priv.code, 1);
    assert.match(priv.stderr, /is a private key/);
    await carol.addKey("carol", readFileSync(`${c.key}.pub`, "utf8").trim());
  });

  test("mrg login --upload-key uploads the default public key once; --no-upload-key leaves it", async () => {
    const dave = await s.user("dave");
    const d = await machine(tmp, "dave");
    const env = { HOME: d.home, MERGE_CONFIG_DIR: join(tmp, "cfg-dave") };
    const login = (flag: string) =>
      mrg(s.portal.url, undefined, ["login", "dave", "--password", "pw-dave-secret", flag], env);
    const none = await login("--no-upload-key");
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(await dave.keys("dave"), []);
    const up = await login("--upload-key");
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /uploaded .*id_ed25519\.pub \(\S+\)/);
    const keys = await dave.keys("dave");
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.key.split(" ")[1], readFileSync(`${d.key}.pub`, "utf8").split(" ")[1]);
    const again = await login("--upload-key");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already one of your keys/);
    assert.equal((await dave.keys("dave")).length, 1);
  });

  test("a member reaches the project's XDC with ssh -J (mrg xdc ssh-config, mrg xdc ssh) and copies files with scp", async () => {
    const synced = s.synced();
    await alice.createXdc("myproj", { name: "x0" });
    await synced;
    const cfg = await sshConfig(alice, a);
    assert.equal(cfg.code, 0, cfg.stderr);
    assert.match(cfg.stdout, /ProxyJump merge-jump/);
    writeFileSync(config(a), cfg.stdout);
    const r = await runIn(a.home, "ssh", ["-F", config(a), "x0-myproj", "hostname; id -un; pwd"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["x0-myproj", "alice", "/home/alice"]);
    // mrg xdc ssh: the same in one command
    const viaMrg = await mrg(s.portal.url, alice.token, ["xdc", "ssh", "x0.myproj", "-i", a.key, "--", "id", "-un"], {
      MERGE_CONFIG_DIR: join(a.home, ".config-merge"),
    });
    assert.equal(viaMrg.code, 0, viaMrg.stderr);
    assert.equal(viaMrg.stdout.trim(), "alice");
    // Without -i: the key `mrg keys add` took from $HOME/.ssh, though ssh itself looks in root's home.
    const byHome = await mrg(s.portal.url, alice.token, ["xdc", "ssh", "x0.myproj", "--", "id", "-un"], {
      HOME: a.home,
      MERGE_CONFIG_DIR: join(a.home, ".config-merge"),
    });
    assert.equal(byHome.code, 0, byHome.stderr);
    assert.equal(byHome.stdout.trim(), "alice");
    // scp -J: into the XDC, where it is alice's home on the portal's storage
    writeFileSync(join(a.home, "notes.txt"), "results\n");
    const cp = await runIn(a.home, "scp", ["-F", config(a), join(a.home, "notes.txt"), "x0-myproj:notes.txt"]);
    assert.equal(cp.code, 0, cp.stderr);
    assert.equal(readFileSync(join(tmp, "portal", "home", "alice", "notes.txt"), "utf8"), "results\n");
  });

  test("the jump host gives no shell, and nobody reaches an XDC of a project they are not in", async () => {
    const shell = await runIn(a.home, "ssh", ["-F", config(a), "merge-jump", "id"]);
    assert.doesNotMatch(shell.stdout, /uid=/);
    assert.match(shell.stdout, /jump host/);
    // carol: no XDC of hers yet, so the jump host lets her key in nowhere
    const cfgC = await sshConfig(carol, c);
    writeFileSync(
      config(c),
      `${cfgC.stdout}Host x0-myproj\n  User carol\n  ProxyJump merge-jump\n  IdentityFile ${c.key}\n  UserKnownHostsFile ${join(c.home, "known_hosts")}\n`,
    );
    let r = await runIn(c.home, "ssh", ["-F", config(c), "-o", "BatchMode=yes", "x0-myproj", "true"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Permission denied/);
    // with an XDC of her own project she gets in at the jump host, but only to hers
    const synced = s.synced();
    await carol.createXdc("carolp", { name: "y0" });
    await synced;
    r = await runIn(c.home, "ssh", ["-F", config(c), "-o", "BatchMode=yes", "x0-myproj", "true"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /administratively prohibited|open failed/);
    const again = await sshConfig(carol, c);
    assert.match(again.stdout, /Host y0-carolp y0\.carolp/);
    writeFileSync(config(c), again.stdout);
    const own = await runIn(c.home, "ssh", ["-F", config(c), "y0-carolp", "hostname"]);
    assert.equal(own.code, 0, own.stderr);
    assert.equal(own.stdout.trim(), "y0-carolp");
    // and her key does not open alice's account in alice's XDC either
    const asAlice = await runIn(c.home, "ssh", [
      "-F",
      config(c),
      "-o",
      "BatchMode=yes",
      "-l",
      "alice",
      "x0-myproj",
      "true",
    ]);
    assert.notEqual(asAlice.code, 0);
  });

  test("a deleted key no longer gets in", async () => {
    const [k] = await alice.keys("alice");
    const synced = s.synced();
    const del = await mrg(s.portal.url, alice.token, ["keys", "delete", (k as { fingerprint: string }).fingerprint]);
    assert.equal(del.code, 0, del.stderr);
    await synced;
    const r = await runIn(a.home, "ssh", ["-F", config(a), "-o", "BatchMode=yes", "x0-myproj", "true"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Permission denied/);
  });
});
