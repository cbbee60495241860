// npm start -- --store etcd: one etcd member (Debian's etcd-server) that the portal and the facility
// share, its data in <data>/etcd, on loopback ports chosen free on the first start and reused after
// (<data>/etcd/ports.json). The kernel kills it when start dies, however start dies (setpriv
// --pdeathsig). <data>/facility/store.url tells cog where the facility's store is.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type EtcdServer, startEtcd } from "@merge/store/etcd-server";

/** Where start says which store its facility uses, when it is not the sqlite default (cog reads it). */
export const storeUrlFile = (data: string): string => join(data, "facility", "store.url");

export async function startLocalEtcd(data: string): Promise<EtcdServer> {
  const dir = join(data, "etcd");
  const portsFile = join(dir, "ports.json");
  let ports: { client: number; peer: number } | undefined;
  try {
    ports = existsSync(portsFile) ? (JSON.parse(readFileSync(portsFile, "utf8")) as typeof ports) : undefined;
  } catch {
    ports = undefined; // a broken record: new free ports
  }
  const etcd = await startEtcd({ dataDir: dir, ...(ports ? { ports } : {}), dieWithParent: true });
  writeFileSync(portsFile, `${JSON.stringify(etcd.ports)}\n`);
  writeFileSync(storeUrlFile(data), `${etcd.url}\n`);
  return etcd;
}

/** A start on sqlite: cog goes back to the sqlite default. */
export function forgetStoreUrl(data: string): void {
  rmSync(storeUrlFile(data), { force: true });
}
