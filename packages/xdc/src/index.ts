export { type AccountFiles, accountFiles } from "./accounts.ts";
export { attachIfname, infranetOf } from "./attach.ts";
export { XdcHostClient, XdcHostError } from "./client.ts";
export { XdcHost, type XdcHostOptions, XdcInputError } from "./host.ts";
export { type JumpAccount, JumpHost, type JumpHostOptions, type JumpTarget } from "./jump.ts";
export { ensureJupyterLayer, JUPYTER_PACKAGES, jupyterLayer } from "./jupyter.ts";
export { serveXdcHost, type XdcService } from "./service.ts";
export { StorageServer, type StorageServerOptions } from "./storage-server.ts";
export * from "./wire.ts";
