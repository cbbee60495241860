export type { JumpAccount, JumpApi, XdcAccount, XdcHostApi, XdcHostStatus, XdcSpec } from "./host.ts";
export { FIRST_ID, unixId } from "./ids.ts";
export { type XdcPluginOptions, type XdcRecord, xdcKeys, xdcPlugin, xdcRoutes } from "./plugin.ts";
