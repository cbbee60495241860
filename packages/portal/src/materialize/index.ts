export { credentialsConnector } from "./connect.ts";
export * from "./materializer.ts";
export { materializationPlugin, materializationRoutes } from "./plugin.ts";
