// npm start's way in: the XDC host (in this process, served over mutual TLS on loopback as a separate
// machine's would be) and the SSH jump host (OpenSSH's sshd). Linux backend only: XDCs are containers.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { certFiles, loadTls, makeCerts } from "@merge/facility";
import type { PortalPlugin } from "@merge/portal";
import { xdcPlugin } from "@merge/portal/xdc";
import { JumpHost, serveXdcHost, XdcHost, XdcHostClient } from "@merge/xdc";

export interface StartedXdc {
  plugin: PortalPlugin;
  jump: JumpHost | undefined;
  /** What to print: where the jump host is, or why there is none. */
  summary: string;
  stop(): Promise<void>;
}

export async function startXdc(data: string, sshPort: number): Promise<StartedXdc> {
  const dir = join(data, "xdc");
  const certs = join(dir, "certs");
  if (!existsSync(join(certs, "ca.pem"))) makeCerts(certs, { facility: "xdc-host", roles: ["commander", "portal"] });
  const host = new XdcHost({
    dataDir: join(dir, "host"),
    homeRoot: join(data, "portal", "home"),
    projRoot: join(data, "portal", "proj"),
  });
  const service = await serveXdcHost(host, loadTls(certFiles(certs, "commander")));
  let jump: JumpHost | undefined;
  let summary: string;
  try {
    jump = await JumpHost.start({ dir: join(dir, "jump"), port: sshPort });
    summary = `ssh -J <user>@127.0.0.1:${sshPort} <user>@<xdc>   (mrg xdc ssh <xdc>; log ${join(dir, "jump", "sshd.log")})`;
  } catch (e) {
    summary = `no SSH jump host: ${(e as Error).message}`;
  }
  const client = new XdcHostClient(service.url, loadTls(certFiles(certs, "portal")));
  return {
    plugin: xdcPlugin({ host: client, ...(jump ? { jump } : {}) }),
    jump,
    summary,
    async stop() {
      await jump?.stop();
      await service.close();
    },
  };
}
