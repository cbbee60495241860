/**
 * What the portal needs from an XDC host (the `@merge/xdc` client has this
 * shape; `npm start` wires it), and from the jump host. Kept here as plain
 * types so the portal depends on no host-side package.
 */
export interface XdcAccount {
  name: string;
  uid: number;
  keys: string[];
}

export interface XdcSpec {
  id: string;
  project: string;
  gid: number;
  accounts: XdcAccount[];
  jupyter: boolean;
  /** The token Jupyter asks for (the portal keeps it; jupyter.ts adds it to what it proxies). */
  jupyterToken?: string;
}

export interface XdcHostStatus {
  id: string;
  hostname: string;
  address: string;
  state: "running" | "stopped";
}

/** The XDC's side of a tunnel to a materialization's infranet: public values only (see @merge/xdc's wire.ts). */
export interface XdcAttachment {
  materialization: string;
  publicKey: string;
  endpoint: string;
  address: string;
  nameserver: string;
  search: string;
}

export interface XdcHostApi {
  create(spec: XdcSpec): Promise<XdcHostStatus>;
  setAccounts(id: string, accounts: XdcAccount[], gid: number): Promise<XdcHostStatus>;
  delete(id: string): Promise<boolean>;
  /** The XDC's WireGuard public key (its private key stays on the host). */
  publicKey(id: string): Promise<string>;
  attach(id: string, a: XdcAttachment): Promise<XdcHostStatus>;
  detach(id: string): Promise<XdcHostStatus>;
}

/** One portal user as the jump host sees them: their keys and the XDCs they may reach. */
export interface JumpAccount {
  name: string;
  uid: number;
  keys: string[];
  targets: { id: string; hostname: string; address: string }[];
}

export interface JumpApi {
  readonly host: string;
  readonly port: number;
  update(accounts: JumpAccount[]): void;
}
