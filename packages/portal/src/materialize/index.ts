export { credentialsConnector } from "./connect.ts";
export { type GatewayHandover, gatewayHandovers, gatewayNeeds, gatewaysHanded, sameEnds } from "./gateways.ts";
export * from "./materializer.ts";
export { planKeys, readPlan } from "./plan-record.ts";
export { materializationPlugin, materializationRoutes } from "./plugin.ts";
export { type StorageKeys, StorageKeyWatch } from "./storage-keys.ts";
