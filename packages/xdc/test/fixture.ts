/**
 * A portal with the XDC plugin, a real XDC host behind mutual TLS and (when
 * asked) the jump host, all in this process over loopback; users made and
 * signed in through the API. `close()` deletes every XDC it made and removes
 * the directory.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { certFiles, freePort, loadTls, makeCerts } from "@merge/facility";
import { DEFAULT_POLICY_FILE, type PortalPlugin } from "@merge/portal";
import { PortalClient } from "@merge/portal/client";
import { type Started, startPortal } from "@merge/portal/main";
import { xdcPlugin } from "@merge/portal/xdc";
import { JumpHost, serveXdcHost, XdcHost, XdcHostClient, type XdcService } from "../src/index.ts";

export interface XdcStack {
  portal: Started;
  admin: PortalClient;
  host: XdcHost;
  service: XdcService;
  certs: string;
  jump: JumpHost | undefined;
  /** Registers, activates and signs in a user. */
  user(name: string): Promise<PortalClient>;
  /** Resolves after an account sync that began after this call. */
  synced(): Promise<void>;
  close(): Promise<void>;
}

/** Why the sshfs storage tests cannot run here, or false. */
export const sshfsSkip =
  (process.getuid?.() !== 0 && "needs root") ||
  (!existsSync("/dev/fuse") && "no /dev/fuse") ||
  (!existsSync("/usr/bin/sshfs") && "needs sshfs (scripts/setup.sh)") ||
  (!existsSync("/usr/bin/bindfs") && "needs bindfs (scripts/setup.sh)") ||
  (!existsSync("/usr/sbin/sshd") && "needs sshd (openssh-server)");

/** This process's mountinfo lines whose mount point is under `dir`. */
export const mountsUnder = (dir: string) =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => (l.split(" ")[4] ?? "").startsWith(dir));

/** The portal's default policy with `quota` lines added (e.g. "  home:\n    default: 8MiB\n"), written in `dir`. */
export function policyWithQuota(dir: string, lines: string): string {
  const text = readFileSync(DEFAULT_POLICY_FILE, "utf8");
  const at = "    revisions: 10000\n";
  if (!text.includes(at)) throw new Error(`${DEFAULT_POLICY_FILE}: no '${at.trim()}' under quota.storage to add to`);
  const file = join(dir, "policy-quota.yml");
  writeFileSync(file, text.replace(at, `${at}${lines}`));
  return file;
}

export { freePort };

export async function startXdcStack(
  tmp: string,
  opts: { jump?: boolean; plugins?: PortalPlugin[] } = {},
): Promise<XdcStack> {
  const certs = join(tmp, "certs");
  makeCerts(certs, { facility: "xdc-host", roles: ["commander", "portal"] });
  const portalDir = join(tmp, "portal");
  mkdirSync(portalDir, { recursive: true });
  const host = new XdcHost({
    dataDir: join(tmp, "xdc-host"),
    homeRoot: join(portalDir, "home"),
    projRoot: join(portalDir, "proj"),
  });
  const service = await serveXdcHost(host, loadTls(certFiles(certs, "commander")));
  const client = new XdcHostClient(service.url, loadTls(certFiles(certs, "portal")));
  const jump = opts.jump ? await JumpHost.start({ dir: join(tmp, "jump"), port: await freePort() }) : undefined;
  let waiters: ((began: number) => void)[] = [];
  const portal = await startPortal({
    dataDir: portalDir,
    port: 0,
    plugins: [
      xdcPlugin({
        host: client,
        ...(jump ? { jump } : {}),
        onSync: (began) => {
          const w = waiters;
          waiters = [];
          for (const f of w) f(began);
        },
      }),
      ...(opts.plugins ?? []),
    ],
  });
  const anon = new PortalClient(portal.url);
  const admin = new PortalClient(portal.url, (await anon.login("admin", portal.admin.password as string)).token);
  return {
    portal,
    admin,
    host,
    service,
    certs,
    jump,
    async user(name) {
      const password = `pw-${name}-secret`;
      await anon.register({ name, email: `${name}@example.org`, password });
      await admin.setUserState(name, "active");
      return new PortalClient(portal.url, (await anon.login(name, password)).token);
    },
    synced() {
      const since = Date.now();
      return new Promise<void>((res) => {
        const check = (began: number) => (began >= since ? res() : waiters.push(check));
        waiters.push(check);
      });
    },
    async close() {
      try {
        for (const x of host.list()) await host.delete(x.id);
      } finally {
        await portal.stop().catch(() => {});
        await jump?.stop();
        await service.close();
      }
    },
  };
}

const root = fileURLToPath(new URL("../../..", import.meta.url));

/** Runs the real `mrg` (bin/mrg) signed in with `token`. */
export function mrg(
  url: string,
  token: string | undefined,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      join(root, "packages/cli/bin/mrg"),
      args,
      {
        cwd: root,
        env: {
          ...process.env,
          MERGE_PORTAL: url,
          MERGE_TOKEN: token ?? "",
          MERGE_CONFIG_DIR: join(root, ".nonexistent-mrg-config"),
          ...env,
        },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * A user's SSH client in `dir`: a fresh ed25519 key uploaded to the portal, and
 * a config that goes through the jump host to XDCs matching `xdcs` (ssh names
 * its known_hosts and key: nothing is written to root's ~/.ssh).
 */
export async function sshClient(
  dir: string,
  user: string,
  client: PortalClient,
  jump: { host: string; port: number },
  xdcs: string,
): Promise<{ key: string; config: string }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = join(dir, "id");
  rmSync(key, { force: true });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", user, "-f", key]);
  await client.addKey(user, execFileSync("cat", [`${key}.pub`], { encoding: "utf8" }).trim());
  const config = join(dir, "config");
  writeFileSync(
    config,
    [
      "Host merge-jump",
      `  HostName ${jump.host}`,
      `  Port ${jump.port}`,
      "Host *",
      `  User ${user}`,
      `  IdentityFile ${key}`,
      "  IdentitiesOnly yes",
      "  StrictHostKeyChecking no",
      `  UserKnownHostsFile ${join(dir, "known_hosts")}`,
      "  BatchMode yes",
      "  ConnectTimeout 10",
      `Host ${xdcs}`,
      "  ProxyJump merge-jump",
      "",
    ].join("\n"),
  );
  return { key, config };
}
