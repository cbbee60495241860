export { synthetic } from "@merge/materialize";
export * from "./actions.ts";
export * from "./backend.ts";
export * from "./certs.ts";
export * from "./commander.ts";
export * from "./dag.ts";
export * from "./driver.ts";
export * from "./driver-service.ts";
export * from "./facility.ts";
export * from "./facility-process.ts";
export * from "./grpc.ts";
export * from "./harbor.ts";
export {
  CERT_WARN_DAYS,
  type CertificateHealth,
  certificateHealth,
  type FacilityHealth,
  facilityHealth,
} from "./health.ts";
export * from "./host/index.ts";
export { FacilityMetrics, type MetricsServer, serveMetrics } from "./metrics.ts";
export * from "./node-ops.ts";
export * from "./operations.ts";
export * from "./port.ts";
export * from "./rex.ts";
export {
  DEFAULT_DURATIONS,
  type FailureRule,
  SimBackend,
  type SimDurations,
  type SimMethod,
  ZERO_DURATIONS,
} from "./sim/sim.ts";
export * from "./sites.ts";
export * from "./task.ts";
export * from "./wire.ts";
