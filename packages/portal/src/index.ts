export * from "./client/index.ts";
export type { PortalConfig, PortalContext } from "./context.ts";
export { type ErrorBody, PortalError } from "./errors.ts";
export { isName, NAME_PATTERN, splitHierarchical } from "./names.ts";
export { keys, realizationId } from "./objects.ts";
export { API_RESOURCE, CLI_CLIENT, WEB_CLIENT } from "./oidc.ts";
export { allows, DEFAULT_POLICY_FILE, loadPolicy, type Policy, PolicyError, parsePolicy } from "./policy.ts";
export { type Engine, type EngineResult, Realizer } from "./realization.ts";
export { buildPortal, type Portal, type PortalPlugin } from "./server.ts";
