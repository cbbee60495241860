import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { type PortalStack, startPortalStack } from "@merge/e2e/portal-stack";
import { certFiles, loadTls, makeCerts } from "@merge/facility";
import { isClean, LinuxBackend, prefixOf, sweep } from "@merge/facility/linux";
import { closeThenRemove } from "@merge/facility/testing";
import type { PortalPlugin } from "@merge/portal";
import { xdcPlugin } from "@merge/portal/xdc";
import { JumpHost, serveXdcHost, XdcHost, XdcHostClient, type XdcService } from "../src/index.ts";
import { freePort, sshClient } from "./fixture.ts";

export interface AttachStack {
  stack: PortalStack;
  host: XdcHost;
  backend: LinuxBackend;
  dataDir: string;
  jump: JumpHost | undefined;
  /** With the jump host: the administrator's key (added to the portal) and an ssh_config using it. */
  ssh?: { key: string; config: string };
  mrg(args: string[]): ReturnType<PortalStack["mrg"]>;
  /** Materializations made (their prefixes are swept at close). */
  mzids: string[];
  close(): Promise<void>;
}

export async function startAttachStack(
  tmp: string,
  opts: {
    jump?: boolean;
    defaultImage?: string;
    plugins?: PortalPlugin[];
    compileTimeoutMs?: number;
    policyFile?: string;
    /** Where the nodes bind /home and /proj from (default: the portal's data directory, as npm start). */
    storage?: string;
  } = {},
): Promise<AttachStack> {
  const certs = join(tmp, "xdc-certs");
  makeCerts(certs, { facility: "xdc-host", roles: ["commander", "portal"] });
  const host = new XdcHost({
    dataDir: join(tmp, "xdc-host"),
    homeRoot: join(tmp, "portal", "home"),
    projRoot: join(tmp, "portal", "proj"),
  });
  const service: XdcService = await serveXdcHost(host, loadTls(certFiles(certs, "commander")));
  const client = new XdcHostClient(service.url, loadTls(certFiles(certs, "portal")));
  const jump = opts.jump ? await JumpHost.start({ dir: join(tmp, "jump"), port: await freePort() }) : undefined;
  const dataDir = join(tmp, "linux");
  const image = opts.defaultImage ?? "busybox";
  // As npm start: the nodes bind-mount the portal's homes and project directories.
  const backend = await LinuxBackend.open({
    dataDir,
    defaultImage: image,
    imageFallback: "busybox",
    storage: opts.storage ?? join(tmp, "portal"),
  });
  const stack = await startPortalStack(tmp, backend, {
    plugins: [xdcPlugin({ host: client, ...(jump ? { jump } : {}) }), ...(opts.plugins ?? [])],
    ...(opts.compileTimeoutMs ? { compile: { timeoutMs: opts.compileTimeoutMs } } : {}),
    ...(opts.policyFile ? { policyFile: opts.policyFile } : {}),
  });
  const mzids: string[] = [];
  const out: AttachStack = {
    stack,
    host,
    backend,
    dataDir,
    jump,
    mzids,
    mrg: (args) => stack.mrg(args),
    async close() {
      let failed: unknown;
      try {
        for (const x of host.list()) await host.delete(x.id);
        await stack.close();
        await service.close();
        await jump?.stop();
      } catch (e) {
        failed = e;
      }
      const left = [];
      for (const mz of mzids) {
        const l = await sweep(prefixOf(mz), dataDir);
        if (!isClean(l)) left.push(l);
      }
      await backend.close();
      if (failed) throw failed;
      if (left.length) throw new Error(`left behind: ${JSON.stringify(left)}`);
    },
  };
  if (jump) out.ssh = await sshClient(join(tmp, "ssh"), "admin", stack.admin, jump, "x*-*");
  return out;
}

/** A Debian node (sshd) and a busybox one on one link: what `ssh c0` and `ping c1` need. */
export const DEBIAN_PAIR = `
import { Network, addressing, routing, image } from "@merge/model";
const net = new Network("pair", addressing.ipv4, routing.static);
const c0 = net.node("c0", image("bookworm"));
const c1 = net.node("c1", image("busybox"));
net.connect([c0, c1]).named("l");
export default net;
`;

/**
 * An attach stack with `model` (TypeScript) accepted as experiment `e1` of `project`: its materialization
 * `r1.e1.<project>` is swept at close.
 */
export async function startAttachStackWithE1(
  tmp: string,
  project: string,
  model: string,
  opts: Parameters<typeof startAttachStack>[1] = {},
): Promise<AttachStack> {
  const a = await startAttachStack(tmp, opts);
  a.mzids.push(`r1.e1.${project}`);
  await a.stack.accepted(project, "e1", model, "ts");
  return a;
}

/** What a describe block that runs one attach stack works with (see `attachScene`). */
export interface AttachScene {
  tmp: string;
  /** A fresh project name (`p` and 8 hex digits): each run its own. */
  proj: string;
  /** `r1.e1.<proj>`: the materialization of the accepted model. */
  mz: string;
  /** `x0.<proj>`: the XDC a test makes. */
  xdc: string;
  /** The started stack; throws when asked before `before` ran (a skipped or failed start). */
  stack(): AttachStack;
  mrg(args: string[]): ReturnType<AttachStack["mrg"]>;
}

/**
 * Call inside `describe`: a temp directory (`tmpPrefix`) and a fresh project; `before` starts an attach
 * stack with `model` accepted as e1 (`opts` may depend on the temp directory), `after` closes it and
 * removes the directory, failed or not.
 */
export function attachScene(
  tmpPrefix: string,
  model: string,
  opts: (tmp: string) => Parameters<typeof startAttachStack>[1] = () => ({}),
): AttachScene {
  const tmp = mkdtempSync(join(tmpdir(), tmpPrefix));
  const proj = `p${randomBytes(4).toString("hex")}`;
  let started: AttachStack | undefined;
  const stack = (): AttachStack => {
    if (!started) throw new Error(`the attach stack in ${tmp} is not started`);
    return started;
  };
  before(async () => {
    started = await startAttachStackWithE1(tmp, proj, model, opts(tmp));
  });
  after(() => closeThenRemove(tmp, started));
  return { tmp, proj, mz: `r1.e1.${proj}`, xdc: `x0.${proj}`, stack, mrg: (args) => stack().mrg(args) };
}
