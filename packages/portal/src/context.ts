/**
 * What every route plugin gets: the store, the policy, the configuration and
 * the domain services. Built once by `buildPortal`.
 */
import type { Store } from "@merge/store";
import type { AuditLog } from "./audit.ts";
import type { CompileLimits, CompilePool } from "./compile-pool.ts";
import type { FacilityHealthReport, MaterializationHealth, ReplicaPresence } from "./health.ts";
import type { Identity } from "./identity.ts";
import type { LeaseKeeper } from "./leases.ts";
import type { PortalMetrics } from "./metrics.ts";
import type { Notifier } from "./notifications.ts";
import type { Policy } from "./policy.ts";
import type { StorageQuota } from "./quota.ts";
import type { Realizer } from "./realization.ts";
import type { Workspace } from "./workspace.ts";
import type { InfranetAttach } from "./xdc/attach.ts";

export interface PortalConfig {
  store: Store;
  /** Data directory: `home/<user>` and `proj/<project>` live under it. */
  dataDir: string;
  /** Externally visible base URL, e.g. `http://127.0.0.1:8080` (the OIDC issuer is `<url>/oidc`). */
  publicUrl: string;
  /** Policy YAML file; default policy.default.yml. */
  policyFile?: string;
  /** Seconds a realization may wait for accept before it is released (default 47). */
  acceptTimeoutSeconds?: number;
  /** Seconds an accepted realization is held unless relinquished (default 0 = until relinquished). */
  holdSeconds?: number;
  /** Largest request body, bytes (default 256 KiB); model pushes get `maxModelBytes`. */
  bodyLimit?: number;
  /** Largest model source a push may carry (default 8 MiB). */
  maxModelBytes?: number;
  /** Use this external OIDC issuer for bearer tokens instead of the embedded provider. */
  externalIssuer?: { issuer: string; jwksUri: string; audience: string; usernameClaim?: string };
  /** Bounds of the compile pool (threads, per-user and global queue, time limit; compile-pool.ts). */
  compile?: Partial<CompileLimits>;
  /**
   * Addresses (or CIDR subnets) of reverse proxies in front of the portal. Only requests from these may set
   * X-Forwarded-For/-Host/-Proto (client address, the OIDC provider's URLs); from anyone else those headers
   * are dropped. Default none (`MERGE_TRUST_PROXY`, comma-separated, for main.ts and npm start).
   */
  trustProxy?: string[];
  /** Fastify logging (default off). */
  logger?: boolean;
  /**
   * A program run once per notice with `{to, user, notice}` as JSON on stdin (an e-mail hook; see
   * notifications.ts). Default none (`MERGE_NOTIFY_COMMAND` for main.ts and npm start).
   */
  notifyCommand?: string;
}

export interface PortalContext {
  store: Store;
  config: Required<Omit<PortalConfig, "externalIssuer" | "policyFile" | "compile" | "notifyCommand">> &
    Pick<PortalConfig, "externalIssuer" | "notifyCommand">;
  policy: Policy;
  identity: Identity;
  workspace: Workspace;
  realizer: Realizer;
  /** Per-user storage limits (the policy file's `quota` section). */
  quota: StorageQuota;
  /** Lease terms, extensions, warnings and reclaim (leases.ts). */
  leases: LeaseKeeper;
  /** Security-relevant actions, for administrators (audit.ts). */
  audit: AuditLog;
  /** This replica's presence record (health.ts). */
  replica: ReplicaPresence;
  /** A materialization's idleness, when the materialize room knows it (idle.ts); absent: unknown. */
  idle?: (mz: { project: string; experiment: string; realization: string }) => Promise<MaterializationHealth["idle"]>;
  /** A facility's own health, asked over the portal↔facility channel: set by the materializations plugin. */
  facilityHealth?: (f: { name: string; endpoint: string }) => Promise<FacilityHealthReport>;
  /** Prometheus metrics of this replica (metrics.ts). */
  metrics: PortalMetrics;
  /** Notices to users (notifications.ts). */
  notifier: Notifier;
  /** Where every compile runs: worker threads, bounded per user and globally. */
  compiles: CompilePool;
  /** Attaching XDCs to materializations' infranets: set by the materializations plugin (absent without it). */
  infranets?: InfranetAttach;
}
