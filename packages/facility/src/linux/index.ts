export { type HarborPlace, harborMzid, LinuxBackend } from "./backend.ts";
export * from "./capabilities.ts";
export { check, IprouteBatch, type Result, type RunInput, run } from "./command.ts";
export { startEmulationControl } from "./control.ts";
export { type DataPlaneOptions, LinuxDataPlane, type MaterializeResult, type PowerState } from "./dataplane.ts";
export { type AgentStart, type Fabric, type FabricHost, fabricVeth, openFabric, removeStaleFabric } from "./fabric.ts";
export {
  externalSegment,
  GATEWAY_MTU,
  type GatewayEnd,
  gatewayDown,
  gatewayPeer,
  gatewayReady,
  gatewayUp,
} from "./gateway.ts";
export {
  busyboxImage,
  DEBIAN_PACKAGES,
  DEBIAN_SUITES,
  DEFAULT_IMAGE,
  debianBuildDir,
  debianImage,
  imageCache,
} from "./image.ts";
export { PREFIX_RE, prefixOf, prefixOn, qualifyNames } from "./names.ts";
export { alive, listNetns, processesIn, processesOn } from "./processes.ts";
export * from "./record.ts";
export { type StorageRemote, storageKeyPair, storageMount, storageUnmount } from "./sshfs.ts";
export { type MzState, prefixesOwned, readStates } from "./state.ts";
export { homeDirFor, projectDirFor, type StorageBind, storageBinds } from "./storage.ts";
export { type OpenStorage, openStorage, parseStorageOption, type StorageOption } from "./storage-remote.ts";
export { isClean, type Leftovers, leftovers, prefixesPresent, sweep } from "./sweep.ts";
export { type Site, siteOf, WAN_LATENCY_NS, WAN_RATE_BPS, type Wan, type WanOptions, wanUp } from "./wan.ts";
export {
  type WireGuardInterface,
  type WireGuardKind,
  type WireGuardPeer,
  wgCreate,
  wgDown,
  wgKeyPair,
  wgListenPort,
  wgPeer,
  wgPeers,
  wgRemovePeer,
  wgUp,
  wireGuardKind,
} from "./wireguard.ts";
