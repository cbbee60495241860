// npm start's way in: the XDC host (in this process, served over mutual TLS on loopback as a separate
// machine's would be), the SSH jump host (OpenSSH's sshd) and the storage server (the portal's home/
// and proj/ over SFTP for facilities on other machines; the portal lists their keys itself, through
// the materialization plugin's StorageKey round). Linux backend only: XDCs are containers.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { certFiles, loadTls, makeCerts } from "@merge/facility";
import type { PortalPlugin } from "@merge/portal";
import { xdcPlugin } from "@merge/portal/xdc";
import { JumpHost, StorageServer, serveXdcHost, XdcHost, XdcHostClient } from "@merge/xdc";

export interface StartedXdc {
  plugin: PortalPlugin;
  jump: JumpHost | undefined;
  /** What to print: where the jump host is, or why there is none. */
  summary: string;
  /** The storage server, for the portal to list facilities' keys at (none when it could not start). */
  storage: StorageServer | undefined;
  /** What to print: how a facility on another machine mounts it, or why there is none. */
  storageSummary: string;
  stop(): Promise<void>;
}

export async function startXdc(data: string, sshPort: number, storagePort: number): Promise<StartedXdc> {
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
  let storage: StorageServer | undefined;
  let storageSummary: string;
  try {
    if (!(storagePort > 0)) throw new Error("--storage-port 0");
    storage = await StorageServer.start({
      dir: join(dir, "storage"),
      homeRoot: join(data, "portal", "home"),
      projRoot: join(data, "portal", "proj"),
      port: storagePort,
    });
    const key = storage.knownHost().split(" ").slice(1).join(" ");
    storageSummary = `sftp://${storage.host}:${storage.port}   (a facility elsewhere: --storage sftp://<this host>:${storage.port} --storage-host-key '${key}')`;
  } catch (e) {
    storageSummary = `no storage server for other machines: ${(e as Error).message}`;
  }
  const client = new XdcHostClient(service.url, loadTls(certFiles(certs, "portal")));
  return {
    plugin: xdcPlugin({ host: client, ...(jump ? { jump } : {}) }),
    jump,
    summary,
    storage,
    storageSummary,
    async stop() {
      await jump?.stop();
      await storage?.stop();
      await service.close();
    },
  };
}
