/**
 * The XDC host: runs the XDCs the portal asks for, each a container
 * (container.ts) with the project's members as accounts, their homes and the
 * project directory bind-mounted from the portal's storage (one machine; see
 * the package README for across hosts). State per XDC is one JSON file in its
 * directory, so a restarted service knows what runs.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { homeDirFor, imageCache, projectDirFor } from "@merge/facility/linux";
import { MergeError } from "@merge/xir/errors";
import { accountFiles, keyLines, rewriteInPlace, writeKeyFiles } from "./accounts.ts";
import { tunnelDown, tunnelUp, xdcPublicKey } from "./attach.ts";
import { answers, containerLeftovers, plumb, running, startContainer, stopContainer } from "./container.ts";
import { ensureJupyterLayer, jupyterCommand } from "./jupyter.ts";
import { check, run, sleep } from "./run.ts";
import {
  JUPYTER_PORT,
  JUPYTER_TOKEN,
  XDC_ID,
  type XdcAccount,
  type XdcAttachment,
  type XdcSpec,
  type XdcStatus,
  xdcHostname,
} from "./wire.ts";

export interface XdcHostOptions {
  /** Where XDC directories (upper layers, generated files, state) live. */
  dataDir: string;
  /** The portal's home and project roots (`<portal data>/home`, `/proj`): bind-mounted into XDCs. */
  homeRoot: string;
  projRoot: string;
  /** Image layers, topmost first; default the Debian image of the image cache (`bookworm`). */
  layers?: string[];
  /**
   * First address of the pool XDC links are cut from (/30 each; default 198.18.0.0, 16,384 XDCs: the
   * benchmarking range of RFC 2544, never a site's network nor an infranet's 172.30.0.0/16, which an
   * attached XDC routes over its tunnel).
   */
  pool?: string;
  log?: (m: string) => void;
}

/** What the host keeps per XDC (`<dir>/xdc.json`). */
interface XdcRecord {
  spec: XdcSpec;
  prefix: string;
  slot: number;
  hostAddress: string;
  address: string;
  pid?: number;
  /** The tunnel to a materialization's infranet, when attached. */
  attachment?: XdcAttachment;
}

/** An error the caller caused (bad spec): the service answers 400 with it. */
export class XdcInputError extends MergeError<"xdc"> {
  constructor(message: string, options?: ErrorOptions) {
    super("xdc", "input", message, options);
  }
}

const NAME = /^[a-z][a-z0-9]{0,31}$/;
const POOL_SLOTS = 16384;

/**
 * The XDC's ssh client: each member's merge key (the portal makes it in their home; nodes and XDCs of
 * their projects accept it) first, then ssh's usual defaults, so `ssh c0` needs nothing copied in.
 */
export const XDC_SSH_CONFIG = [
  "# Written by the XDC host: your merge key (the portal made it in your home), then ssh's usual keys.",
  "IdentityFile ~/.ssh/merge_key",
  ...["id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk"].map((k) => `IdentityFile ~/.ssh/${k}`),
  "",
].join("\n");

export class XdcHost {
  private readonly dir: string;
  private readonly layers: string[];
  private readonly pool: number;
  /** One operation per XDC at a time. */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: XdcHostOptions) {
    this.dir = resolve(opts.dataDir, "xdcs");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.layers = opts.layers ?? [join(imageCache(), "bookworm")];
    this.pool = ipToInt(opts.pool ?? "198.18.0.0");
  }

  /** The prefix of every host object of this XDC (namespace, interface, directory). */
  prefixOf(id: string): string {
    return `mx${createHash("sha256").update(`${this.dir}\0${id}`).digest("hex").slice(0, 6)}`;
  }

  list(): XdcStatus[] {
    return this.records().map((r) => this.statusOf(r));
  }

  status(id: string): XdcStatus | undefined {
    const r = this.record(id);
    return r === undefined ? undefined : this.statusOf(r);
  }

  /** Creates the XDC, or starts it again if it exists but is not running; its accounts become `spec`'s. */
  create(spec: XdcSpec): Promise<XdcStatus> {
    checkSpec(spec);
    return this.serial(spec.id, async () => {
      for (const layer of this.layers) {
        if (!existsSync(join(layer, "usr/sbin/sshd"))) {
          if (layer === this.layers.at(-1))
            throw new Error(
              `the XDC image is not built on this host (${layer} has no sshd): run scripts/setup.sh as root (it builds the Debian image)`,
            );
        }
      }
      let rec = this.record(spec.id);
      if (rec !== undefined && running(rec.prefix, rec.pid)) {
        rec.spec = spec;
        this.writeAccounts(rec);
        await this.mountHomes(rec);
        this.save(rec);
        return this.statusOf(rec);
      }
      if (rec === undefined) {
        const prefix = this.prefixOf(spec.id);
        const slot = await this.freeSlot();
        rec = {
          spec,
          prefix,
          slot,
          hostAddress: intToIp(this.pool + slot * 4 + 1),
          address: intToIp(this.pool + slot * 4 + 2),
        };
      } else {
        rec.spec = spec;
        await stopContainer(rec.prefix, rec.pid);
      }
      const dir = this.xdcDir(rec.prefix);
      mkdirSync(join(dir, "etc", "mrg-xdc", "keys"), { recursive: true, mode: 0o755 });
      this.save(rec);
      try {
        await this.writeSshd(rec);
        this.writeAccounts(rec);
        // Jupyter's layer goes above the image; built here the first time (about a minute), cached after.
        const layers = spec.jupyter
          ? [await ensureJupyterLayer(dirname(this.layers.at(-1) as string)), ...this.layers]
          : this.layers;
        await plumb({ ...this.containerSpec(rec, layers) });
        rec.pid = await startContainer(this.containerSpec(rec, layers));
        this.save(rec);
        // Started again while attached: the same key and peer, so the tunnel comes back as it was.
        if (rec.attachment) await tunnelUp(rec.prefix, this.xdcDir(rec.prefix), rec.attachment);
        if (spec.jupyter) await this.jupyterAnswers(rec);
      } catch (e) {
        await this.remove(rec).catch(() => {});
        throw e;
      }
      this.opts.log?.(`xdc ${spec.id}: running at ${rec.address} (${rec.prefix})`);
      return this.statusOf(rec);
    });
  }

  /** Running means usable: with Jupyter, once it answers (it starts after sshd, in a few seconds). */
  private async jupyterAnswers(rec: XdcRecord, timeoutMs = 90_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (await answers(rec.address, JUPYTER_PORT)) return;
      await sleep(100);
    }
    const log = join(this.xdcDir(rec.prefix), "background.log");
    const tail = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").slice(-5).join(" | ") : "";
    throw new Error(
      `XDC ${rec.spec.id}: Jupyter did not answer at ${rec.address}:${JUPYTER_PORT} within ${timeoutMs} ms${tail ? `: ${tail}` : ""}`,
    );
  }

  /** New accounts and keys for a running XDC (members or keys changed). */
  setAccounts(id: string, accounts: XdcAccount[], gid: number): Promise<XdcStatus> {
    return this.serial(id, async () => {
      const rec = this.record(id);
      if (rec === undefined) throw new XdcInputError(`no XDC ${id} on this host`);
      rec.spec = { ...rec.spec, accounts, gid };
      checkSpec(rec.spec);
      this.writeAccounts(rec);
      await this.mountHomes(rec);
      this.save(rec);
      return this.statusOf(rec);
    });
  }

  /** The XDC's WireGuard public key (the key pair is made on first use and stays on this host). */
  publicKey(id: string): Promise<string> {
    return this.serial(id, async () => {
      const rec = this.runningRecord(id);
      return xdcPublicKey(rec.prefix, this.xdcDir(rec.prefix));
    });
  }

  /** Connect the XDC to a materialization's infranet (attach.ts); replaces the tunnel it had. */
  attach(id: string, a: XdcAttachment): Promise<XdcStatus> {
    checkAttachment(a);
    return this.serial(id, async () => {
      const rec = this.runningRecord(id);
      await tunnelUp(rec.prefix, this.xdcDir(rec.prefix), a, rec.attachment);
      rec.attachment = a;
      this.save(rec);
      this.opts.log?.(`xdc ${id}: attached to ${a.materialization} as ${a.address}`);
      return this.statusOf(rec);
    });
  }

  /** Remove the XDC's tunnel (fine when it has none). */
  detach(id: string): Promise<XdcStatus> {
    return this.serial(id, async () => {
      const rec = this.record(id);
      if (rec === undefined) throw new XdcInputError(`no XDC ${id} on this host`);
      await tunnelDown(rec.prefix, this.xdcDir(rec.prefix));
      if (rec.attachment) this.opts.log?.(`xdc ${id}: detached from ${rec.attachment.materialization}`);
      delete rec.attachment;
      this.save(rec);
      return this.statusOf(rec);
    });
  }

  private runningRecord(id: string): XdcRecord {
    const rec = this.record(id);
    if (rec === undefined) throw new XdcInputError(`no XDC ${id} on this host`);
    if (!running(rec.prefix, rec.pid)) throw new XdcInputError(`XDC ${id} is not running`);
    return rec;
  }

  /** Deletes the XDC: container, namespace, interface, directory. Deleting one that is not there is fine. */
  delete(id: string): Promise<boolean> {
    return this.serial(id, async () => {
      const rec = this.record(id);
      if (rec === undefined) return false;
      await this.remove(rec);
      this.opts.log?.(`xdc ${id}: deleted`);
      return true;
    });
  }

  /** Everything of this XDC still on the host (empty after delete). */
  async leftovers(id: string): Promise<string[]> {
    const prefix = this.prefixOf(id);
    const out = await containerLeftovers(prefix);
    if (existsSync(this.xdcDir(prefix))) out.push(`directory ${this.xdcDir(prefix)}`);
    const mounts = readFileSync("/proc/self/mounts", "utf8");
    if (mounts.includes(this.xdcDir(prefix))) out.push(`mount under ${this.xdcDir(prefix)}`);
    return out;
  }

  /** Where the XDC's PID 1 is (nsenter target), when it runs. */
  initPid(id: string): number | undefined {
    const rec = this.record(id);
    if (rec?.pid === undefined) return undefined;
    try {
      const kids = readFileSync(`/proc/${rec.pid}/task/${rec.pid}/children`, "utf8").trim().split(/\s+/);
      return kids[0] ? Number(kids[0]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Runs a command inside the XDC (as root, in its root), for operations and tests. */
  async exec(id: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const pid = this.initPid(id);
    if (pid === undefined) throw new XdcInputError(`XDC ${id} is not running`);
    return run("nsenter", ["-t", String(pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--", ...argv]);
  }

  private async remove(rec: XdcRecord): Promise<void> {
    // Its own tunnel first: the wireguard-go process lives in the host's namespace, not the XDC's.
    await tunnelDown(rec.prefix, this.xdcDir(rec.prefix)).catch(() => {});
    await stopContainer(rec.prefix, rec.pid);
    rmSync(this.xdcDir(rec.prefix), { recursive: true, force: true });
  }

  private containerSpec(rec: XdcRecord, layers = this.layers) {
    const s = rec.spec;
    return {
      prefix: rec.prefix,
      hostname: xdcHostname(s.id),
      dir: this.xdcDir(rec.prefix),
      layers,
      hostAddress: rec.hostAddress,
      address: rec.address,
      mounts: [
        ...s.accounts.map((a) => ({ source: this.home(a), target: `/home/${a.name}` })),
        { source: this.project(s), target: `/proj/${s.project}` },
      ],
      background: jupyterCommand(s, rec.address),
      jupyterToken: s.jupyter ? s.jupyterToken : undefined,
    };
  }

  /** The member's home on the portal's storage, owned by their uid. */
  private home(a: XdcAccount): string {
    return homeDirFor(this.opts.homeRoot, a.name, a.uid);
  }

  /** The project directory, group-owned by the project (setgid: new files stay the project's). */
  private project(s: XdcSpec): string {
    return projectDirFor(this.opts.projRoot, s.project, s.gid);
  }

  /** Homes of accounts added since the container started: bind-mounted inside its mount namespace. */
  private async mountHomes(rec: XdcRecord): Promise<void> {
    const pid = this.initPid(rec.spec.id);
    if (pid === undefined) return;
    const root = join(this.xdcDir(rec.prefix), "root");
    const mounted = readFileSync(`/proc/${pid}/mounts`, "utf8");
    for (const a of rec.spec.accounts) {
      const target = join(root, "home", a.name);
      if (mounted.includes(` ${target} `)) continue;
      await check("nsenter", [
        "-t",
        String(pid),
        "-m",
        "--",
        "/bin/sh",
        "-c",
        'mkdir -p "$2" && mount --bind "$1" "$2"',
        "sh",
        this.home(a),
        target,
      ]);
    }
  }

  private async writeSshd(rec: XdcRecord): Promise<void> {
    const etc = join(this.xdcDir(rec.prefix), "etc", "mrg-xdc");
    const key = join(etc, "ssh_host_ed25519_key");
    if (!existsSync(key))
      await check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", xdcHostname(rec.spec.id), "-f", key]);
    writeFileSync(
      join(etc, "sshd_config"),
      [
        "# Written by the XDC host: members log in with the keys they gave the portal.",
        "Port 22",
        "HostKey /etc/mrg-xdc/ssh_host_ed25519_key",
        "AuthorizedKeysFile /etc/mrg-xdc/keys/%u",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PermitRootLogin no",
        "PrintMotd no",
        "PidFile /run/sshd.pid",
        "Subsystem sftp internal-sftp",
        "AcceptEnv LANG LC_*",
        "",
      ].join("\n"),
    );
    writeFileSync(join(etc, "ssh_config"), XDC_SSH_CONFIG);
    chmodSync(etc, 0o755);
  }

  /** passwd, group, shadow of the image plus the accounts; one key file per account; hosts; resolv.conf. */
  private writeAccounts(rec: XdcRecord): void {
    const dir = this.xdcDir(rec.prefix);
    const etc = join(dir, "etc");
    const image = this.layers.at(-1) as string;
    const base = (f: string) => (existsSync(join(image, "etc", f)) ? readFileSync(join(image, "etc", f), "utf8") : "");
    const { files } = accountFiles(
      { passwd: base("passwd"), group: base("group"), shadow: base("shadow") },
      rec.spec.accounts,
      { shell: "/bin/bash", home: (n) => `/home/${n}`, project: { name: rec.spec.project, gid: rec.spec.gid } },
    );
    rewriteInPlace(join(etc, "passwd"), files.passwd);
    rewriteInPlace(join(etc, "group"), files.group);
    rewriteInPlace(join(etc, "shadow"), files.shadow, 0o640);
    const hostname = xdcHostname(rec.spec.id);
    if (!existsSync(join(etc, "hosts")))
      rewriteInPlace(join(etc, "hosts"), `127.0.0.1 localhost\n${rec.address} ${hostname}\n`);
    if (!existsSync(join(etc, "resolv.conf"))) rewriteInPlace(join(etc, "resolv.conf"), "");
    writeKeyFiles(
      join(etc, "mrg-xdc", "keys"),
      rec.spec.accounts.map((a) => ({ name: a.name, text: keyLines(a.keys), mode: 0o644 })),
    );
  }

  private statusOf(r: XdcRecord): XdcStatus {
    return {
      id: r.spec.id,
      project: r.spec.project,
      hostname: xdcHostname(r.spec.id),
      address: r.address,
      state: running(r.prefix, r.pid) ? "running" : "stopped",
      jupyter: r.spec.jupyter,
      accounts: r.spec.accounts.map((a) => a.name),
      ...(r.attachment ? { attached: r.attachment.materialization } : {}),
    };
  }

  private xdcDir(prefix: string): string {
    return join(this.dir, prefix);
  }

  private records(): XdcRecord[] {
    const out: XdcRecord[] = [];
    for (const p of readdirSync(this.dir)) {
      const f = join(this.dir, p, "xdc.json");
      if (!existsSync(f)) continue;
      try {
        out.push(JSON.parse(readFileSync(f, "utf8")) as XdcRecord);
      } catch {
        // half-written by a crash: the temp file never replaced it, so this cannot happen; skip anyway
      }
    }
    return out;
  }

  private record(id: string): XdcRecord | undefined {
    const f = join(this.xdcDir(this.prefixOf(id)), "xdc.json");
    return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as XdcRecord) : undefined;
  }

  private save(rec: XdcRecord): void {
    const dir = this.xdcDir(rec.prefix);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, "xdc.json.tmp");
    writeFileSync(tmp, JSON.stringify(rec, null, 2));
    renameSync(tmp, join(dir, "xdc.json"));
  }

  /** A /30 no XDC of this host holds and no interface of the machine uses (other hosts' runs share it). */
  private async freeSlot(): Promise<number> {
    const taken = new Set(this.records().map((r) => r.slot));
    const inUse = (await run("ip", ["-o", "-4", "addr", "show"])).stdout;
    for (let slot = 0; slot < POOL_SLOTS; slot++) {
      if (taken.has(slot)) continue;
      if (inUse.includes(` ${intToIp(this.pool + slot * 4 + 1)}/`)) continue;
      return slot;
    }
    throw new Error(`no free XDC address: all ${POOL_SLOTS} /30s from ${intToIp(this.pool)} are in use`);
  }

  private serial<T>(id: string, f: () => Promise<T>): Promise<T> {
    const prev = this.busy.get(id) ?? Promise.resolve();
    const next = prev.then(f, f);
    const settled = next.catch(() => {});
    this.busy.set(id, settled);
    void settled.then(() => {
      if (this.busy.get(id) === settled) this.busy.delete(id);
    });
    return next;
  }
}

function checkSpec(s: XdcSpec): void {
  if (typeof s.id !== "string" || !XDC_ID.test(s.id))
    throw new XdcInputError(`id: '${String(s.id)}' is not an XDC name (name.project, lowercase letters and digits)`);
  if (s.id.split(".")[1] !== s.project)
    throw new XdcInputError(`project: '${s.project}' is not the project of ${s.id}`);
  if (!Number.isInteger(s.gid) || s.gid < 1000 || s.gid > 2 ** 31)
    throw new XdcInputError(`gid: ${s.gid} is not a group id ≥ 1000`);
  if (!Array.isArray(s.accounts)) throw new XdcInputError("accounts: expected a list");
  s.accounts.forEach((a, i) => {
    if (!NAME.test(a.name)) throw new XdcInputError(`accounts[${i}].name: '${a.name}' is not a user name`);
    if (!Number.isInteger(a.uid) || a.uid < 1000 || a.uid > 2 ** 31)
      throw new XdcInputError(`accounts[${i}].uid: ${a.uid} is not a user id ≥ 1000`);
    if (!Array.isArray(a.keys) || a.keys.some((k) => typeof k !== "string" || k.includes("\n")))
      throw new XdcInputError(`accounts[${i}].keys: expected one-line public keys`);
  });
  if (typeof s.jupyter !== "boolean") throw new XdcInputError("jupyter: expected true or false");
  if (s.jupyter && (typeof s.jupyterToken !== "string" || !JUPYTER_TOKEN.test(s.jupyterToken)))
    throw new XdcInputError("jupyterToken: expected 32 to 128 letters, digits, '-' or '_' (with jupyter: true)");
  if (s.jupyter && s.accounts.length === 0)
    throw new XdcInputError("accounts: Jupyter runs as a member of the project; the project has no active member");
}

const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

function checkAttachment(a: XdcAttachment): void {
  if (
    typeof a.materialization !== "string" ||
    !/^[a-z][a-z0-9]*\.[a-z][a-z0-9]*\.[a-z][a-z0-9]*$/.test(a.materialization)
  )
    throw new XdcInputError(`materialization: '${String(a.materialization)}' is not realization.experiment.project`);
  if (typeof a.publicKey !== "string" || !WG_KEY.test(a.publicKey))
    throw new XdcInputError("publicKey: expected a WireGuard public key (44 characters of base64 ending in '=')");
  if (typeof a.endpoint !== "string" || !/^[A-Za-z0-9.:[\]-]+:\d{1,5}$/.test(a.endpoint))
    throw new XdcInputError(`endpoint: '${String(a.endpoint)}' is not host:port`);
  if (typeof a.address !== "string" || !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(a.address))
    throw new XdcInputError(`address: '${String(a.address)}' is not an IPv4 address with a prefix length`);
  if (typeof a.nameserver !== "string" || !/^\d{1,3}(\.\d{1,3}){3}$/.test(a.nameserver))
    throw new XdcInputError(`nameserver: '${String(a.nameserver)}' is not an IPv4 address`);
  if (typeof a.search !== "string" || !/^[a-z0-9.-]{1,63}$/.test(a.search))
    throw new XdcInputError(`search: '${String(a.search)}' is not a domain`);
}

function ipToInt(ip: string): number {
  const p = ip.split(".").map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255))
    throw new XdcInputError(`pool: '${ip}' is not an IPv4 address`);
  return (((p[0] as number) << 24) >>> 0) + ((p[1] as number) << 16) + ((p[2] as number) << 8) + (p[3] as number);
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}
