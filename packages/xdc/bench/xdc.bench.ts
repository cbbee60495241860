// npm run bench -- xdc [case]   (root; the Debian image; sshd from openssh-server or $MERGE_SSHD)
//   xdc-new   ms from `POST /projects/p/xdcs` until `ssh -J` through the jump host runs `true` in the new
//             XDC (the container, its sshd, the account sync to the XDC and the jump host); api_ms: the
//             create call alone (it returns once the XDC's sshd answers). Target < 10 s.
//   ssh-xdc   ms for `ssh -F <mrg xdc ssh-config> x0-p true` end to end (two SSH handshakes: the jump host,
//             then the XDC), median of 5.
//   xdc-jupyter  ready_ms from `POST /projects/p/xdcs {jupyter: true}` until Jupyter's API answers through the
//             portal's proxy (the layer already built: `ensureJupyterLayer` before timing); proxy_median_ms:
//             one `GET …/jupyter/api/status` through the proxy, median of 20.
//   attach    ms from `PUT …/xdcs/x0.p/attachment` (mrg xdc attach's call) until node c1 answers `ping` from
//             the XDC by name (the facility's endpoint, the XDC's tunnel, DNS through the infrapod); api_ms:
//             the call alone. A materialization of DEBIAN_PAIR on the linux backend. Target < 3 s.
//   ssh-to-node  ms for `ssh -J merge-jump,x0-p c0 true` end to end (three SSH handshakes: the jump host,
//             the XDC, the node's sshd with the member's key from foundry), median of 5. Target < 2 s.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench } from "@merge/bench";
import { PortalClient } from "@merge/portal/client";
import { ensureJupyterLayer } from "../src/index.ts";
import { type AttachStack, DEBIAN_PAIR, startAttachStack } from "../test/attach-stack.ts";
import { sshClient, startXdcStack, type XdcStack } from "../test/fixture.ts";

interface Setup {
  tmp: string;
  s: XdcStack;
  alice: PortalClient;
  config: string;
}

/** A stack with the jump host, alice with a key, project p; `config` is an ssh_config for `xdcs`. */
async function setup(): Promise<Setup> {
  if (process.getuid?.() !== 0) throw new Error("the xdc benchmark needs root (XDCs are containers)");
  const tmp = mkdtempSync(join(tmpdir(), "xdc-bench-"));
  const s = await startXdcStack(tmp, { jump: true }).catch((e: unknown) => {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  });
  const alice = await s.user("alice");
  await alice.createProject({ name: "p" });
  const { config } = await sshClient(join(tmp, "ssh"), "alice", alice, await alice.jumpHost(), "x*-p");
  return { tmp, s, alice, config };
}

function sshTrue(config: string, host: string): boolean {
  try {
    execFileSync("ssh", ["-F", config, host, "true"], { stdio: "ignore", timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

async function teardown(x: Setup): Promise<void> {
  try {
    await x.s.close();
  } finally {
    rmSync(x.tmp, { recursive: true, force: true });
  }
}

interface Attached {
  tmp: string;
  a: AttachStack;
  config: string;
}

/** The attach stack with the jump host, project p materialized (r1.e1.p), XDC x0.p made; `attach` attaches it. */
async function attachSetup(attach: boolean): Promise<Attached> {
  if (process.getuid?.() !== 0) throw new Error("the xdc benchmark needs root (XDCs and nodes are containers)");
  const tmp = mkdtempSync(join(tmpdir(), "xdc-bench-attach-"));
  let a: AttachStack | undefined;
  try {
    a = await startAttachStack(tmp, { jump: true, defaultImage: "bookworm" });
    a.mzids.push("r1.e1.p");
    await a.stack.accepted("p", "e1", DEBIAN_PAIR, "ts");
    const up = await a.mrg(["materialize", "r1.e1.p", "--timeout", "300"]);
    if (up.code !== 0) throw new Error(`materialize failed: ${up.stderr}${up.stdout}`);
    await a.stack.admin.createXdc("p", { name: "x0" });
    if (attach) await a.stack.admin.attachXdc("p", "x0", "r1.e1.p");
    return { tmp, a, config: (a.ssh as { config: string }).config };
  } catch (e) {
    await a?.close().catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function attachTeardown(x: Attached): Promise<void> {
  try {
    await x.a.close();
  } finally {
    rmSync(x.tmp, { recursive: true, force: true });
  }
}

export default defineBench({
  name: "xdc",
  cases: {
    "xdc-new": benchCase(async () => {
      const x = await setup();
      return {
        run: async () => {
          const t0 = performance.now();
          await x.alice.createXdc("p", { name: "x0" });
          const api = performance.now() - t0;
          for (let i = 0; i < 400 && !sshTrue(x.config, "x0-p"); i++) await new Promise((r) => setTimeout(r, 50));
          return { api };
        },
        fields: (r) => ({ api_ms: Math.round(r.api) }),
        targets: { max: { ms: 10_000 } },
        cleanup: () => teardown(x),
      };
    }),
    "ssh-xdc": benchCase(async () => {
      const x = await setup();
      try {
        await x.alice.createXdc("p", { name: "x0" });
        // until the jump host has the XDC (the account sync follows the create); ssh runs synchronously,
        // so wait between tries for the portal in this process to sync
        let ok = false;
        for (let i = 0; i < 200 && !ok; i++) {
          await new Promise((r) => setTimeout(r, 100));
          ok = sshTrue(x.config, "x0-p");
        }
        if (!ok) throw new Error("ssh -J into x0-p failed");
      } catch (e) {
        await teardown(x);
        throw e;
      }
      return {
        run: () => {
          const times: number[] = [];
          for (let i = 0; i < 5; i++) {
            const t0 = performance.now();
            if (!sshTrue(x.config, "x0-p")) throw new Error("ssh -J into x0-p failed");
            times.push(performance.now() - t0);
          }
          return times.sort((a, b) => a - b);
        },
        fields: (t) => ({ median_ms: Math.round(t[2] ?? 0), min_ms: Math.round(t[0] ?? 0) }),
        targets: { max: { median_ms: 2000 } },
        cleanup: () => teardown(x),
      };
    }),
    attach: benchCase(async () => {
      const x = await attachSetup(false);
      const ping = async () => (await x.a.host.exec("x0.p", ["ping", "-c", "1", "-W", "1", "c1"])).code === 0;
      return {
        run: async () => {
          const t0 = performance.now();
          await x.a.stack.admin.attachXdc("p", "x0", "r1.e1.p");
          const api = performance.now() - t0;
          let ok = false;
          for (let i = 0; i < 200 && !ok; i++) ok = await ping();
          if (!ok) throw new Error("c1 did not answer ping from the attached XDC");
          return { api };
        },
        fields: (r) => ({ api_ms: Math.round(r.api) }),
        targets: { max: { ms: 3000 } },
        cleanup: () => attachTeardown(x),
      };
    }),
    "ssh-to-node": benchCase(async () => {
      const x = await attachSetup(true);
      const toNode = () => {
        try {
          execFileSync("ssh", ["-F", x.config, "-J", "merge-jump,x0-p", "c0", "true"], {
            stdio: "ignore",
            timeout: 20_000,
          });
          return true;
        } catch {
          return false;
        }
      };
      // Until the jump host has the XDC (the account sync follows the create).
      let ok = false;
      for (let i = 0; i < 100 && !ok; i++) {
        await new Promise((r) => setTimeout(r, 200));
        ok = toNode();
      }
      if (!ok) {
        await attachTeardown(x);
        throw new Error("ssh -J merge-jump,x0-p c0 failed");
      }
      return {
        run: () => {
          const times: number[] = [];
          for (let i = 0; i < 5; i++) {
            const t0 = performance.now();
            if (!toNode()) throw new Error("ssh -J merge-jump,x0-p c0 failed");
            times.push(performance.now() - t0);
          }
          return times.sort((a, b) => a - b);
        },
        fields: (t) => ({ median_ms: Math.round(t[2] ?? 0), min_ms: Math.round(t[0] ?? 0) }),
        targets: { max: { median_ms: 2000 } },
        cleanup: () => attachTeardown(x),
      };
    }),
    "xdc-jupyter": benchCase(async () => {
      await ensureJupyterLayer();
      const x = await setup();
      const { token } = await new PortalClient(x.s.portal.url).login("alice", "pw-alice-secret");
      const status = async () =>
        (
          await fetch(`${x.s.portal.url}/xdc/x0.p/jupyter/api/status`, {
            headers: { authorization: `Bearer ${token}` },
          })
        ).status;
      return {
        run: async () => {
          const t0 = performance.now();
          await x.alice.createXdc("p", { name: "x0", jupyter: true });
          for (let i = 0; i < 600 && (await status()) !== 200; i++) await new Promise((r) => setTimeout(r, 50));
          const ms = performance.now() - t0;
          const times: number[] = [];
          for (let i = 0; i < 20; i++) {
            const t = performance.now();
            if ((await status()) !== 200) throw new Error("Jupyter did not answer through the proxy");
            times.push(performance.now() - t);
          }
          times.sort((a, b) => a - b);
          return { ms, proxy: times[10] ?? 0 };
        },
        fields: (r) => ({ ready_ms: Math.round(r.ms), proxy_median_ms: Math.round(r.proxy * 10) / 10 }),
        targets: { max: { ready_ms: 30_000 } },
        cleanup: () => teardown(x),
      };
    }),
  },
});
