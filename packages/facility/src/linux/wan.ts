/**
 * Sites joined by a wide area, on one machine (tests, `npm start -- --facilities 2`,
 * `bench materialize-multi`). A site is a facility's underlay: a network
 * namespace whose `wan0` holds the facility's wide-area address, where its
 * gateway's tunnels to other facilities end. The wide area is one more
 * namespace whose ports (`s0`, `s1`, … one per site) are joined by mrg-emu, the
 * delay line link emulation uses where the kernel has no netem
 * (emulation.ts): each frame waits the one-way latency when it leaves toward a
 * site, and tbf on that port holds it to the rate. So a round trip between two
 * sites takes twice the latency.
 *
 * Everything carries the caller's run prefix (namespaces `<run>wan`,
 * `<run>s<i>`); `close()` ends the forwarder by its pid, every process left in
 * the site namespaces (a facility's wireguard-go), and the namespaces.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { check, run } from "./command.ts";
import { setForwarder, spawnForwarder, tbfLine } from "./emulation.ts";
import { nativeProgram } from "./native.ts";
import { alive, killAll, listNetns, processesIn } from "./processes.ts";

/** One-way latency of the wide area unless asked otherwise: 15 ms. */
export const WAN_LATENCY_NS = 15_000_000;
/** Rate of the wide area toward each site unless asked otherwise: 100 Mbit/s. */
export const WAN_RATE_BPS = 100_000_000;
/**
 * MTU of the wide area: room for a gateway's VXLAN (50 bytes) inside WireGuard (80) around a
 * node's 1500-byte frame (linux/gateway.ts).
 */
export const WAN_MTU = 1700;
/** Wide-area addresses: site i is 203.0.113.(i+1) (TEST-NET-3, never routed; XDC links use 198.18/15). */
export const WAN_SUBNET = "203.0.113";

export interface WanOptions {
  /** Per-run prefix (≤ 8 characters) naming the namespaces. */
  run: string;
  /** One site per name (facility names), in order. */
  sites: string[];
  /** One-way latency, ns (default 15 ms). */
  latencyNs?: number;
  /** bits/s toward each site (default 100 Mbit/s). */
  rateBps?: number;
  /** Where the forwarder's binary is cached and its socket, pid file and log live. */
  dataDir: string;
}

export interface Site {
  name: string;
  /** The site's namespace: the facility's underlay. */
  netns: string;
  /** The site's wide-area address (on `wan0`). */
  address: string;
}

export interface Wan {
  netns: string;
  sites: Site[];
  latencyNs: number;
  rateBps: number;
  /** Change the one-way latency (ns) at run time. */
  setLatency(ns: number): Promise<void>;
  /** Remove the wide area and every site (idempotent). */
  close(): Promise<void>;
}

const MAX_RUN = 8;

/** The ith site of a wide area of prefix `run`: known before it is made (a facility started first is told it). */
export function siteOf(run: string, i: number, name: string): Site {
  return { name, netns: `${run}s${i}`, address: `${WAN_SUBNET}.${i + 1}` };
}

/** Make the sites and the wide area between them; on failure, nothing is left. */
export async function wanUp(o: WanOptions): Promise<Wan> {
  if (!/^[a-z][a-z0-9]*$/.test(o.run) || o.run.length > MAX_RUN)
    throw new Error(`wan: run prefix '${o.run}': expected 1–${MAX_RUN} lowercase letters and digits`);
  if (o.sites.length < 2 || o.sites.length > 200)
    throw new Error(`wan: ${o.sites.length} sites: expected between 2 and 200`);
  const latencyNs = o.latencyNs ?? WAN_LATENCY_NS;
  const rateBps = o.rateBps ?? WAN_RATE_BPS;
  if (!(Number.isFinite(latencyNs) && latencyNs >= 0 && latencyNs <= 10e9))
    throw new Error(`wan: latency ${latencyNs} ns: expected between 0 and 10 s`);
  if (!(Number.isFinite(rateBps) && rateBps >= 8000)) throw new Error(`wan: rate ${rateBps} bit/s: expected ≥ 8000`);
  const netns = `${o.run}wan`;
  const dir = join(o.dataDir, "wan", o.run);
  const sites: Site[] = o.sites.map((name, i) => siteOf(o.run, i, name));
  const ports = sites.map((_, i) => `s${i}`);
  let pid = 0;
  let closed = false;

  const close = async () => {
    if (closed) return;
    closed = true;
    if (pid && alive(pid)) await killAll([pid]);
    // What a facility left running in its site (wireguard-go) holds the namespace: it goes first.
    const names = [netns, ...sites.map((s) => s.netns)];
    await killAll(processesIn(names).map((p) => p.pid));
    for (const n of names) if (listNetns().includes(n)) await run("ip", ["netns", "del", n]);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await check("ip", ["netns", "add", netns]);
    await check("ip", ["-n", netns, "link", "set", "lo", "up"]);
    for (const [i, s] of sites.entries()) {
      await check("ip", ["netns", "add", s.netns]);
      await check("ip", ["-n", s.netns, "link", "set", "lo", "up"]);
      await check("ip", [
        "-n",
        netns,
        "link",
        "add",
        ports[i]!,
        "type",
        "veth",
        "peer",
        "name",
        "wan0",
        "netns",
        s.netns,
      ]);
      await check("ip", ["-n", s.netns, "address", "add", `${s.address}/24`, "dev", "wan0"]);
      await check("ip", ["-n", s.netns, "link", "set", "wan0", "mtu", String(WAN_MTU), "up"]);
      await check("ip", ["-n", netns, "link", "set", ports[i]!, "mtu", String(WAN_MTU), "up"]);
    }
    const tc = ports.map((p) => tbfLine(p, rateBps));
    await check("tc", ["-n", netns, "-batch", "-"], `${tc.join("\n")}\n`);
    pid = await spawnForwarder({
      bin: await nativeProgram(o.dataDir, "mrg-emu"),
      netns,
      dir,
      name: "wan",
      ports,
      values: ports.map(() => ({ latency: latencyNs })),
      what: `the wide area ${netns}`,
    });
  } catch (e) {
    await close();
    throw e;
  }
  const wan: Wan = {
    netns,
    sites,
    latencyNs,
    rateBps,
    async setLatency(ns: number) {
      await setForwarder(
        join(dir, "wan.sock"),
        ports.map(() => ({ latency: ns })),
      );
      wan.latencyNs = ns;
    },
    close,
  };
  return wan;
}
