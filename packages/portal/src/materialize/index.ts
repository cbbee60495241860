export { credentialsConnector } from "./connect.ts";
export * from "./materializer.ts";
export { materializationRoutes } from "./plugin.ts";
