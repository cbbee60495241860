/**
 * What the portal and an XDC host say to each other (JSON over HTTPS with
 * mutual TLS). The portal decides who may do what; the host only runs what it
 * is told, for the accounts it is given.
 */

/** An account in an XDC (and on the jump host): a portal user with the uid the portal gave them. */
export interface XdcAccount {
  name: string;
  uid: number;
  /** OpenSSH public keys, one per entry (`ssh-ed25519 AAAA… comment`). */
  keys: string[];
}

/** Everything the host needs to run one XDC. */
export interface XdcSpec {
  /** `x0.myproj` */
  id: string;
  project: string;
  /** The project's group id: `/proj/<project>` belongs to it. */
  gid: number;
  accounts: XdcAccount[];
  /** Run Jupyter (on port JUPYTER_PORT inside the XDC, reached only through the portal). */
  jupyter: boolean;
  /** Jupyter's token (with `jupyter`): the portal keeps it and adds it to what it proxies; nobody types it. */
  jupyterToken?: string;
}

/**
 * The XDC's side of a WireGuard tunnel to a materialization's infranet, as the
 * facility's attach endpoint granted it (only public values: the XDC host
 * makes and keeps its own private key).
 */
export interface XdcAttachment {
  /** `r1.exp.myproj` */
  materialization: string;
  /** The infrapod endpoint's public key. */
  publicKey: string;
  /** `host:port` of the endpoint. */
  endpoint: string;
  /** The XDC's infranet address with prefix length (`172.30.255.254/16`): the infranet is routed over the tunnel. */
  address: string;
  /** The infrapod's dnsmasq and the search domain (`infranet`: `c0` is `c0.infranet`). */
  nameserver: string;
  search: string;
}

export type XdcState = "running" | "stopped";

/** What the host reports about an XDC. */
export interface XdcStatus {
  id: string;
  project: string;
  /** The XDC's host name (`x0-myproj`): what the jump host resolves and `ssh` names. */
  hostname: string;
  /** Where the jump host and the portal's proxy reach it. */
  address: string;
  state: XdcState;
  jupyter: boolean;
  accounts: string[];
  /** The materialization the XDC is attached to, if any. */
  attached?: string;
}

/** Jupyter's port on the XDC's address (reachable from the host over the veth only). */
export const JUPYTER_PORT = 8888;

/** What a Jupyter token looks like (the portal makes 32 random bytes, base64url). */
export const JUPYTER_TOKEN = /^[A-Za-z0-9_-]{32,128}$/;

/** `x0.myproj` → `x0-myproj`: a host name (the dot would make it a domain). */
export function xdcHostname(id: string): string {
  return id.replace(/\./g, "-");
}

const PART = "[a-z][a-z0-9]{0,31}";
export const XDC_ID = new RegExp(`^${PART}\\.${PART}$`);
