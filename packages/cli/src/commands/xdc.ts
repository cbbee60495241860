// mrg xdc new|list|show|delete|attach|detach|ssh|ssh-config: experiment development containers and the way in
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import type { PortalClient, Xdc } from "@merge/portal/client";
import type { Command } from "commander";
import { action, done, type OutputFlags, portalOptions, print, signedIn, UsageError } from "../client.ts";
import { configDir } from "../config.ts";
import { DEFAULT_KEYS } from "./keys.ts";

type Flags = OutputFlags & { portal?: string };
const COLUMNS: (keyof Xdc)[] = ["id", "state", "hostname", "jupyter", "attached", "creator", "created"];

/** `x0.myproj` → [x0, myproj], or a usage error saying what the name must look like. */
export function parseXdc(id: string): [string, string] {
  const p = id.split(".");
  if (p.length !== 2 || p.some((x) => !/^[a-z][a-z0-9]{0,31}$/.test(x)))
    throw new UsageError(
      `'${id}' is not an XDC name: expected name.project (lower-case letters and digits, starting with a letter), e.g. x0.myproj`,
    );
  return p as [string, string];
}

/**
 * An ssh_config for the jump host and these XDCs: `ssh <hostname>` then goes through the jump host. Host keys are
 * trusted on first use (accept-new), as for any new server.
 */
export function sshConfig(
  jump: { host: string; port: number },
  user: string,
  xdcs: readonly Pick<Xdc, "hostname" | "id">[],
  identity?: string | string[],
  knownHosts?: string,
): string {
  const id = [
    ...(typeof identity === "string" ? [`  IdentityFile ${identity}`, "  IdentitiesOnly yes"] : []),
    ...(Array.isArray(identity) ? identity.map((f) => `  IdentityFile ${f}`) : []),
    ...(knownHosts ? [`  UserKnownHostsFile ${knownHosts}`] : []),
  ];
  const lines = [
    "# Merge: the jump host and your XDCs (mrg xdc ssh-config)",
    "Host merge-jump",
    `  HostName ${jump.host}`,
    `  Port ${jump.port}`,
    `  User ${user}`,
    "  StrictHostKeyChecking accept-new",
    ...id,
  ];
  if (xdcs.length > 0) {
    lines.push(
      `Host ${xdcs.flatMap((x) => [x.hostname, x.id]).join(" ")}`,
      `  User ${user}`,
      "  ProxyJump merge-jump",
      "  StrictHostKeyChecking accept-new",
      ...id,
    );
  }
  return `${lines.join("\n")}\n`;
}

/**
 * ssh reads ~/.ssh of the account's home in the password database, not of $HOME: where the two differ
 * (sudo -E, a container's or a CI job's HOME), the keys `mrg keys add` takes from $HOME/.ssh are named for it,
 * in the order it picks them (agent keys still count). None where they agree: ssh finds them itself.
 */
export function homeIdentities(): string[] {
  if (homedir() === userInfo().homedir) return [];
  return DEFAULT_KEYS.map((k) => join(homedir(), ".ssh", k)).filter((f) => existsSync(f));
}

async function configFor(
  c: PortalClient,
  xdcs: Xdc[],
  identity?: string | string[],
  knownHosts?: string,
): Promise<string> {
  const [jump, me] = await Promise.all([c.jumpHost(), c.whoami()]);
  return sshConfig(jump, me.name, xdcs, identity, knownHosts);
}

export function registerXdc(program: Command): void {
  const x = program
    .command("xdc")
    .description("experiment development containers: your project's shell, reached with ssh through the jump host")
    .addHelpText(
      "after",
      `
Examples:
  mrg keys add                              # once: the key ssh will use
  mrg xdc new x0.myproj                     # a container with the project's members as accounts
  mrg xdc ssh x0.myproj                     # ssh -J through the portal's jump host
  mrg xdc ssh x0.myproj -- hostname         # run a command
  mrg xdc ssh-config >> ~/.ssh/config       # then plain: ssh x0-myproj, scp file x0-myproj:
  mrg xdc attach x0.myproj r1.exp.myproj    # the materialization's nodes by name: ping c0, ssh c0
  mrg xdc detach x0.myproj
  (mrg xdc ssh keeps the XDCs' host keys in ~/.config/merge/known_hosts)
  mrg xdc delete x0.myproj`,
    );
  portalOptions(
    x
      .command("new <xdc>")
      .description("create an XDC (name.project): the project's maintainers may")
      .option("--jupyter", "also run Jupyter, at <portal>/xdc/<name.project>/jupyter/"),
  ).action(
    action(async (id: string, f: Flags & { jupyter?: boolean }) => {
      const [name, project] = parseXdc(id);
      print(f, await signedIn(f).createXdc(project, { name, ...(f.jupyter ? { jupyter: true } : {}) }), COLUMNS);
    }),
  );
  portalOptions(x.command("list [project]").description("XDCs of a project (default: all of your projects)")).action(
    action(async (project: string | undefined, f: Flags) => {
      const c = signedIn(f);
      print(f, project === undefined ? await c.allXdcs() : await c.xdcs(project), COLUMNS);
    }),
  );
  portalOptions(x.command("show <xdc>").description("one XDC")).action(
    action(async (id: string, f: Flags) => {
      const [name, project] = parseXdc(id);
      print(f, await signedIn(f).xdc(project, name), [...COLUMNS, "address"]);
    }),
  );
  portalOptions(
    x.command("delete <xdc>").description("delete an XDC: its container and everything in it but /home and /proj"),
  ).action(
    action(async (id: string, f: Flags) => {
      const [name, project] = parseXdc(id);
      await signedIn(f).deleteXdc(project, name);
      done(f, `deleted XDC ${id}`, { xdc: id, deleted: true });
    }),
  );
  portalOptions(
    x
      .command("attach <xdc> <materialization>")
      .description("connect an XDC to a materialization's infranet (WireGuard): its nodes answer by name"),
  ).action(
    action(async (id: string, mz: string, f: Flags) => {
      const [name, project] = parseXdc(id);
      if (!/^[a-z][a-z0-9]*\.[a-z][a-z0-9]*\.[a-z][a-z0-9]*$/.test(mz))
        throw new UsageError(
          `'${mz}' is not a materialization: expected realization.experiment.project, e.g. r1.exp.myproj`,
        );
      print(f, await signedIn(f).attachXdc(project, name, mz), [...COLUMNS, "attachedAddress"]);
    }),
  );
  portalOptions(
    x.command("detach <xdc>").description("disconnect an XDC from the materialization it is attached to"),
  ).action(
    action(async (id: string, f: Flags) => {
      const [name, project] = parseXdc(id);
      const before = await signedIn(f).xdc(project, name);
      await signedIn(f).detachXdc(project, name);
      done(f, before.attached ? `detached XDC ${id} from ${before.attached}` : `XDC ${id} was not attached`, {
        xdc: id,
        detached: before.attached ?? null,
      });
    }),
  );
  portalOptions(
    x
      .command("ssh-config")
      .description("an ssh_config for the jump host and your XDCs (append it to ~/.ssh/config)")
      .option("-i, --identity <file>", "private key file ssh should use")
      .option("--known-hosts <file>", "where ssh keeps these hosts' keys (default: ssh's own ~/.ssh/known_hosts)"),
    { json: false },
  ).action(
    action(async (f: Flags & { identity?: string; knownHosts?: string }) => {
      const c = signedIn(f);
      process.stdout.write(await configFor(c, await c.allXdcs(), f.identity, f.knownHosts));
    }),
  );
  portalOptions(
    x
      .command("ssh <xdc> [command...]")
      .description("ssh into an XDC through the jump host (put a command after --)")
      .option("-i, --identity <file>", "private key file ssh should use"),
    { json: false },
  ).action(
    action(async (id: string, command: string[], f: Flags & { identity?: string }) => {
      const [name, project] = parseXdc(id);
      const c = signedIn(f);
      const xdc = await c.xdc(project, name);
      const dir = mkdtempSync(join(tmpdir(), "mrg-ssh-"));
      try {
        const file = join(dir, "config");
        // Host keys of the jump host and XDCs are kept apart from ~/.ssh (an XDC made again has a new one).
        mkdirSync(configDir(), { recursive: true, mode: 0o700 });
        const known = join(configDir(), "known_hosts");
        writeFileSync(file, await configFor(c, [xdc], f.identity ?? homeIdentities(), known), { mode: 0o600 });
        const r = spawnSync("ssh", ["-F", file, xdc.hostname, ...command], { stdio: "inherit" });
        if (r.error) throw new UsageError(`cannot run ssh: ${r.error.message} (install openssh-client)`);
        process.exitCode = r.status ?? 1;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }),
  );
}
