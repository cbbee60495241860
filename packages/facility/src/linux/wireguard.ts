/**
 * WireGuard interfaces in network namespaces: how an XDC joins a
 * materialization's infranet and how facilities join theirs across the wide
 * area. The kernel's WireGuard is used where the kernel has it; otherwise
 * wireguard-go (Debian package), a userspace implementation over TUN — this
 * machine's kernel has no WireGuard module.
 *
 * Keys are made where they are used and stay there: `wgKeyPair` writes the
 * private key to a 0600 file in a directory of the caller's (the facility's
 * or the XDC host's state) and returns only the public key, the one thing
 * that may travel (through the portal) to the other side. `wg set` reads the
 * private key from that file; it never appears in argv, environment or logs.
 *
 * An interface lives as long as its link: deleting it (`wgDown`) also ends
 * its wireguard-go process, which exits when its TUN device goes away. (A
 * wireguard-go process keeps its namespace alive, so a namespace is not
 * removed by `ip netns del` alone: the sweep ends the processes in it first.)
 */
import { spawn } from "node:child_process";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { check, run } from "./command.ts";

/** Which implementation makes the interfaces on this host. */
export type WireGuardKind = "kernel" | "wireguard-go";

export interface WireGuardPeer {
  /** Base64 public key of the other side. */
  publicKey: string;
  /** `address:port` the other side listens on; absent when it only calls in. */
  endpoint?: string;
  /** Prefixes routed to this peer (and accepted from it), e.g. `10.1.0.0/16`. */
  allowedIps: string[];
  /** Seconds between keepalives; for a side behind NAT or one that only calls out. */
  keepalive?: number;
}

export interface WireGuardInterface {
  netns: string;
  /**
   * Interface name (≤ 15 characters), unique on the host, not only in
   * `netns`: wireguard-go's control socket is `/var/run/wireguard/<name>.sock`,
   * one directory for every namespace. Use the per-run prefix.
   */
  name: string;
  /** File holding this side's private key (made by `wgKeyPair`). */
  keyFile: string;
  /** Address of the interface with its prefix length, e.g. `172.30.0.1/24`. */
  address: string;
  /** UDP port to listen on; absent: the kernel picks one (a side that only calls out). */
  listenPort?: number;
  /** 1420 leaves room for WireGuard's 80 bytes of overhead on a 1500-byte path. */
  mtu?: number;
  /**
   * The namespace the tunnel's UDP socket lives in, when not `netns`: the
   * interface is made there and moved into `netns` (WireGuard's "birth
   * namespace": the encrypted side stays outside, the clear side inside).
   * `""` is this process's own namespace (the host's). Absent: `netns`.
   */
  underlay?: string;
}

let kind: Promise<WireGuardKind> | undefined;

/** X25519 in-process, as `wg genkey`/`wg pubkey` compute it: a process each costs more than the math here. */
const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");
const x25519Raw = (der: Buffer): string => der.subarray(-32).toString("base64");

/** The public key of a WireGuard private key (base64 both). */
export function wgPublicKey(privateKey: string): string {
  const raw = Buffer.from(privateKey, "base64");
  if (raw.length !== 32) throw new Error("a WireGuard private key is 32 bytes of base64");
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: "der", type: "pkcs8" });
  return x25519Raw(createPublicKey(key).export({ format: "der", type: "spki" }));
}

/** The kernel module when a probe device can be made, wireguard-go otherwise; tried once per process. */
export function wireGuardKind(): Promise<WireGuardKind> {
  kind ??= (async () => {
    const probe = `mgwg${process.pid.toString(36).slice(-6)}`;
    const made = await run("ip", ["link", "add", probe, "type", "wireguard"]);
    if (made.code !== 0) return "wireguard-go";
    await run("ip", ["link", "del", probe]);
    return "kernel";
  })();
  return kind;
}

/**
 * A key pair for `name` in `dir`: the private key in `<dir>/<name>.key`
 * (0600, made once and reused), the public key returned.
 */
export async function wgKeyPair(dir: string, name: string): Promise<{ keyFile: string; publicKey: string }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyFile = join(dir, `${name}.key`);
  let key: string;
  try {
    key = readFileSync(keyFile, "utf8").trim();
  } catch {
    key = x25519Raw(generateKeyPairSync("x25519").privateKey.export({ format: "der", type: "pkcs8" }));
    writeFileSync(keyFile, `${key}\n`, { mode: 0o600, flag: "wx" });
  }
  return { keyFile, publicKey: wgPublicKey(key) };
}

function inNetns(netns: string, argv: string[]): string[] {
  return [`--net=/run/netns/${netns}`, "--", ...argv];
}

/** `ip` arguments acting in `netns` (`""`: this process's own namespace). */
const ipIn = (netns: string, args: string[]) => (netns === "" ? args : ["-n", netns, ...args]);

/** Start wireguard-go for `name` in `netns` (`""`: here); it daemonizes once its TUN device is up. */
function startUserspace(netns: string, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] =
      netns === "" ? ["wireguard-go", name] : ["nsenter", ...inNetns(netns, ["wireguard-go", name])];
    const c = spawn(cmd as string, args, {
      stdio: ["ignore", "ignore", "pipe"],
      // Without this wireguard-go refuses to start on kernels ≥ 5.6 (which should have the module).
      env: { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: "1" },
    });
    let err = "";
    c.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    c.on("error", (e) =>
      reject(new Error(`wireguard-go could not be started (is Debian's wireguard-go installed?): ${e.message}`)),
    );
    c.on("close", (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`wireguard-go ${name} in ${netns} failed (exit ${code}): ${err.trim()}`)),
    );
  });
}

/** True once a daemon answers a `get` on the control socket `sock` (within `ms`). */
function uapiAnswers(sock: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    let got = "";
    const c = createConnection({ path: sock });
    const done = (ok: boolean) => {
      clearTimeout(t);
      c.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), ms);
    c.on("connect", () => c.write("get=1\n\n"));
    c.on("data", (d) => {
      got += d.toString("utf8");
      if (/errno=\d+\n/.test(got)) done(true);
    });
    c.on("error", () => done(false));
    c.on("close", () => done(/errno=\d+\n/.test(got)));
  });
}

async function uapiReady(sock: string, what: string): Promise<void> {
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    if (existsSync(sock) && (await uapiAnswers(sock, 2_000))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: its control socket ${sock} did not answer in 15 s (did wireguard-go exit?)`);
}

/**
 * Make the interface `name` in `netns` unless it is there. Made in `born`
 * (default `netns`; `""`: this process's namespace) and moved: its UDP socket
 * stays where it was born, so the tunnel's encrypted side runs on that
 * namespace's addresses (the host's for XDC attach, a site's for gateways).
 */
export async function wgCreate(netns: string, name: string, born = netns): Promise<WireGuardKind> {
  const k = await wireGuardKind();
  const have = await run("ip", ["-n", netns, "link", "show", name]);
  if (have.code !== 0) {
    if (k === "kernel") await check("ip", ipIn(born, ["link", "add", name, "type", "wireguard"]));
    else {
      await startUserspace(born, name);
      // The parent makes the control socket and exits; its daemonized child then finds its TUN device
      // by name in the namespace it was born in. Moved away (or configured) before the child answers,
      // the child dies and `wg` falls back to the kernel: "Protocol not supported". So: wait for it.
      await uapiReady(`/var/run/wireguard/${name}.sock`, `wireguard-go ${name} in ${born || "this namespace"}`);
    }
    if (born !== netns) await check("ip", ipIn(born, ["link", "set", name, "netns", netns]));
  }
  return k;
}

/**
 * Bring up `w` (idempotent: an existing interface keeps its peers and gets
 * its key, port and address ensured). Returns the implementation used.
 */
export async function wgUp(w: WireGuardInterface): Promise<WireGuardKind> {
  const k = await wgCreate(w.netns, w.name, w.underlay);
  const set = ["wg", "set", w.name, "private-key", w.keyFile];
  if (w.listenPort !== undefined) set.push("listen-port", String(w.listenPort));
  await check("nsenter", inNetns(w.netns, set));
  await check("ip", ["-n", w.netns, "address", "replace", w.address, "dev", w.name]);
  await check("ip", ["-n", w.netns, "link", "set", w.name, "mtu", String(w.mtu ?? 1420), "up"]);
  return k;
}

/** Add or update a peer of `name` in `netns`. */
export async function wgPeer(netns: string, name: string, p: WireGuardPeer): Promise<void> {
  const args = ["wg", "set", name, "peer", p.publicKey, "allowed-ips", p.allowedIps.join(",")];
  if (p.endpoint) args.push("endpoint", p.endpoint);
  if (p.keepalive !== undefined) args.push("persistent-keepalive", String(p.keepalive));
  await check("nsenter", inNetns(netns, args));
}

/** The prefixes each peer of `name` is allowed (`wg show <name> allowed-ips`), by public key. */
export async function wgAllowedIps(netns: string, name: string): Promise<Map<string, string[]>> {
  const out = await check("nsenter", inNetns(netns, ["wg", "show", name, "allowed-ips"]));
  const peers = new Map<string, string[]>();
  for (const line of out.split("\n").filter((l) => l.trim())) {
    const [publicKey = "", ...allowed] = line.trim().split(/\s+/);
    peers.set(
      publicKey,
      allowed.filter((a) => a !== "(none)"),
    );
  }
  return peers;
}

/** Remove a peer (no error if it is not there). */
export async function wgRemovePeer(netns: string, name: string, publicKey: string): Promise<void> {
  await check("nsenter", inNetns(netns, ["wg", "set", name, "peer", publicKey, "remove"]));
}

/** Public keys of the peers `name` has, with their latest handshake (seconds since epoch, 0 = never). */
export async function wgPeers(netns: string, name: string): Promise<{ publicKey: string; handshake: number }[]> {
  const out = await check("nsenter", inNetns(netns, ["wg", "show", name, "latest-handshakes"]));
  return out
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      const [publicKey, t] = l.trim().split(/\s+/);
      return { publicKey: publicKey ?? "", handshake: Number(t ?? 0) };
    });
}

/** The UDP port `name` listens on (the one the kernel picked when `listenPort` was absent). */
export async function wgListenPort(netns: string, name: string): Promise<number> {
  const out = await check("nsenter", inNetns(netns, ["wg", "show", name, "listen-port"]));
  const port = Number(out.trim());
  if (!Number.isInteger(port) || port <= 0) throw new Error(`WireGuard ${name} in ${netns} listens on no port yet`);
  return port;
}

/** Delete the interface (its wireguard-go process exits with it); no error if it is gone. */
export async function wgDown(netns: string, name: string): Promise<void> {
  await run("ip", ["-n", netns, "link", "del", name]);
  // wireguard-go removes its control socket as it exits: until then a new interface of the same
  // name (a materialization made again) would lose its socket to the old process.
  const sock = `/var/run/wireguard/${name}.sock`;
  for (let i = 0; i < 100 && existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
}
