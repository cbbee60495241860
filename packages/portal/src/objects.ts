/**
 * The portal's objects as stored, and where each lives in the store. Every key
 * is built here from validated names, so the layout is in one place.
 */
import type { Experiment as XirExperiment, Facility as XirFacility, Realization as XirRealization } from "@merge/xir";
import { type ChunkedBody, chunkKey } from "./chunked.ts";

export type UserState = "pending" | "active" | "frozen";
export type Visibility = "public" | "protected" | "private";
export type MemberRole = "creator" | "maintainer" | "member";

export interface User {
  name: string;
  /** Immutable and never reused: a name registered again is a new id, which no earlier token names. */
  id: string;
  /** Token generation: bumped on a password change and a freeze; tokens of earlier generations are refused. */
  generation: number;
  /** When the current generation began (an external issuer's tokens must be issued since). */
  generationAt: string;
  email: string;
  fullName: string;
  state: UserState;
  admin: boolean;
  created: string;
  /** scrypt$N$r$p$salt$hash; absent for accounts that only sign in through an external issuer. */
  passwordHash?: string;
}

export interface SshKey {
  user: string;
  fingerprint: string;
  key: string;
  created: string;
}

export interface ApiToken {
  id: string;
  user: string;
  /** The user's id and token generation when issued: valid only while both still hold. */
  userId: string;
  generation: number;
  name: string;
  /** sha256 of the secret part; the secret itself is shown once and never stored. */
  hash: string;
  created: string;
  expires: string | null;
}

export interface Project {
  name: string;
  description: string;
  visibility: Visibility;
  /** The personal project every user gets, named after them; deleted with the user only. */
  personal: boolean;
  creator: string;
  created: string;
}

export interface Member {
  project: string;
  user: string;
  role: MemberRole;
  added: string;
}

export interface Experiment {
  name: string;
  project: string;
  description: string;
  visibility: Visibility;
  creator: string;
  created: string;
  /** Number of revisions pushed; revision numbers are 1..revisions. */
  revisions: number;
}

export interface CompileError {
  message: string;
  line?: number;
  column?: number;
  field?: string;
}

export type ModelLang = "ts" | "py" | "xir";

/** Summary of one revision (listing reads these, never the sources). */
export interface Revision {
  project: string;
  experiment: string;
  number: number;
  lang: ModelLang;
  /** sha256 of the source. */
  sourceHash: string;
  sourceBytes: number;
  status: "compiled" | "error";
  errors: CompileError[];
  /** Canonical hash of the compiled XIR, when it compiled. */
  xirHash: string | null;
  nodes: number;
  links: number;
  pushedBy: string;
  created: string;
}

export interface RevisionBody {
  source: string;
  xir: XirExperiment | null;
}

/**
 * What `keys.revisionBody` holds: the body itself when its JSON is small (the only shape before
 * chunking), else a header whose chunks (the whole body, compressed) are under `keys.revisionChunks`.
 */
export type StoredRevisionBody = RevisionBody | { body: ChunkedBody };

export type RealizationState = "pending" | "accepted" | "failed";

export interface RealizationRecord {
  name: string;
  experiment: string;
  project: string;
  revision: number;
  state: RealizationState;
  creator: string;
  created: string;
  /** pending: released at this time unless accepted; accepted: held until then (null: until relinquished). */
  expires: string | null;
  /** When it was accepted (the lease maximum counts from here). */
  accepted?: string;
  /** Seconds asked for (`mrg realize --duration`) while pending: the lease its accept starts. */
  leaseSeconds?: number;
  realization: XirRealization | null;
  /** Why realization failed, when it did. */
  diagnostics: string[];
  /** Resource ids (`facility/resource`) this realization holds. */
  resources: string[];
}

/**
 * What is left of a realization released because it was not accepted in time:
 * kept for a while (a store lease) so that asking for it says what happened.
 */
export interface ExpiredRealization {
  id: string;
  /** When it was realized, and when it was released for want of an accept. */
  created: string;
  expired: string;
  /** Why: its accept window closed (absent: the only reason before leases), or its lease ran out. */
  reason?: "accept" | "lease";
}

/** A realization record without its embedding: what listings read and show. */
export type RealizationSummary = Omit<RealizationRecord, "realization">;

/**
 * What `keys.realization` holds: the record itself when its JSON is small (the only shape before
 * chunking); else `realization` is null and `body` describes its chunks, compressed, under
 * `keys.realizationChunks` (realization-record.ts).
 */
export interface StoredRealization extends RealizationRecord {
  body?: ChunkedBody;
}

export interface FacilityRecord {
  name: string;
  description: string;
  endpoint: string;
  /** PEM certificate the portal presents to / expects from the facility commander. */
  certificate: string;
  state: "active" | "inactive";
  registered: string;
  updated: string;
  model: XirFacility;
}

/** A facility's model in chunks: where (a fresh generation per model written) and the little that listings show. */
export interface FacilityModelChunks extends ChunkedBody {
  generation: string;
  resources: number;
}

/**
 * What `keys.facility` holds: the record itself when its JSON is small (the only shape before
 * chunking); else `model` is null and `body` describes its chunks under `keys.facilityChunks`
 * (facility-record.ts).
 */
export interface StoredFacility extends Omit<FacilityRecord, "model"> {
  model: XirFacility | null;
  body?: FacilityModelChunks;
}

/** A facility record without its model: what listings read and show. */
export type FacilitySummary = Omit<FacilityRecord, "model"> & { resources: number };

const P = "portal/";
export const keys = {
  user: (u: string) => `${P}users/${u}`,
  users: () => `${P}users/`,
  sshKey: (u: string, fp: string) => `${P}keys/${u}/${fp}`,
  sshKeys: (u: string) => `${P}keys/${u}/`,
  token: (id: string) => `${P}tokens/${id}`,
  tokens: () => `${P}tokens/`,
  project: (p: string) => `${P}projects/${p}`,
  projects: () => `${P}projects/`,
  member: (p: string, u: string) => `${P}members/${p}/${u}`,
  members: (p: string) => `${P}members/${p}/`,
  /** Reverse index: the projects a user belongs to. */
  membership: (u: string, p: string) => `${P}membership/${u}/${p}`,
  memberships: (u: string) => `${P}membership/${u}/`,
  allMembers: () => `${P}members/`,
  allMemberships: () => `${P}membership/`,
  experiment: (p: string, e: string) => `${P}experiments/${p}/${e}`,
  experiments: (p: string) => `${P}experiments/${p}/`,
  allExperiments: () => `${P}experiments/`,
  revision: (p: string, e: string, n: number) => `${P}revisions/${p}/${e}/${String(n).padStart(8, "0")}`,
  revisions: (p: string, e: string) => `${P}revisions/${p}/${e}/`,
  revisionBody: (p: string, e: string, n: number) => `${P}sources/${p}/${e}/${String(n).padStart(8, "0")}`,
  revisionBodies: (p: string, e: string) => `${P}sources/${p}/${e}/`,
  /** A big revision body's chunks (chunked.ts), written and deleted with `revisionBody`. */
  revisionChunks: (p: string, e: string, n: number) => `${P}source-chunks/${p}/${e}/${String(n).padStart(8, "0")}/`,
  experimentRevisionChunks: (p: string, e: string) => `${P}source-chunks/${p}/${e}/`,
  allRevisionChunks: () => `${P}source-chunks/`,
  realization: (p: string, e: string, r: string) => `${P}realizations/${p}/${e}/${r}`,
  realizations: (p: string, e: string) => `${P}realizations/${p}/${e}/`,
  projectRealizations: (p: string) => `${P}realizations/${p}/`,
  allRealizations: () => `${P}realizations/`,
  /** A big realization's embedding, in chunks (chunked.ts), written and deleted with `realization`. */
  realizationChunks: (p: string, e: string, r: string) => `${P}realization-chunks/${p}/${e}/${r}/`,
  allRealizationChunks: () => `${P}realization-chunks/`,
  /** Pending/accepted realizations by expiry time, so the sweeper reads only what is due. */
  expiry: (at: number, p: string, e: string, r: string) => `${P}expiry/${String(at).padStart(15, "0")}/${p}/${e}/${r}`,
  expiries: () => `${P}expiry/`,
  /** An ExpiredRealization, on a lease (EXPIRED_KEPT_SECONDS). */
  expired: (p: string, e: string, r: string) => `${P}expired/${p}/${e}/${r}`,
  /** A realization's materialization (kept by the materialize room); a realization with one cannot be released. */
  materialization: (p: string, e: string, r: string) => `${P}materializations/${p}/${e}/${r}`,
  allMaterializations: () => `${P}materializations/`,
  pool: (name: string) => `${P}pools/${name}`,
  pools: () => `${P}pools/`,
  facility: (f: string) => `${P}facilities/${f}`,
  facilities: () => `${P}facilities/`,
  /** A wide-area link between two facilities' gateway ports (routes/interconnects.ts). */
  interconnect: (id: string) => `${P}interconnects/${id}`,
  interconnects: () => `${P}interconnects/`,
  /** A big facility model's chunks, one generation per model written (chunked.ts). */
  facilityChunks: (f: string, generation: string) => `${P}facility-chunks/${f}/${generation}/`,
  facilityChunkGenerations: (f: string) => `${P}facility-chunks/${f}/`,
  allFacilityChunks: () => `${P}facility-chunks/`,
  /** Bumped by every facility change: the resource internet cache is keyed by its revision. */
  facilityEpoch: () => `${P}epoch/facilities`,
  /** A facility's hosts as it last reported them (host-state.ts): realization avoids drained and down ones. */
  facilityHosts: (f: string) => `${P}facility-hosts/${f}`,
  allFacilityHosts: () => `${P}facility-hosts/`,
  /**
   * The allocation table, one entry per realization holding resources: a small header at
   * `allocation(id)` and its records, compressed, in chunks under `allocationChunks(id)`, all
   * written by the realize transaction that also bumps `allocationEpoch()` (see realization.ts).
   */
  allocation: (id: string) => `${P}alloc/${encodeURIComponent(id)}`,
  allocations: () => `${P}alloc/`,
  allocationChunk: (id: string, i: number) => chunkKey(`${P}alloc-chunks/${encodeURIComponent(id)}/`, i),
  allocationChunks: (id: string) => `${P}alloc-chunks/${encodeURIComponent(id)}/`,
  allAllocationChunks: () => `${P}alloc-chunks/`,
  /** Every reservation compares and bumps it, so reservations computed from one table serialize. */
  allocationEpoch: () => `${P}epoch/allocations`,
  /** An experiment's history (history.ts): what happened to its realizations and why. */
  history: (p: string, e: string) => `${P}history/${p}/${e}/`,
  /** A user's notices (notifications.ts). */
  notices: (u: string) => `${P}notices/${u}/`,
  /** Lease notices already sent, so every replica's sweeper sends each once (leases.ts). */
  leaseWarned: (p: string, e: string, r: string, expiresAt: number, before: number) =>
    `${P}lease-warned/${p}/${e}/${r}/${expiresAt}-${before}`,
  /** The last exec/shell session of a realization's materialization (idle.ts). */
  activity: (p: string, e: string, r: string) => `${P}activity/${p}/${e}/${r}`,
  /** The last node activity sample the facilities gave (idle.ts). */
  facilityActivity: (p: string, e: string, r: string) => `${P}facility-activity/${p}/${e}/${r}`,
  /** Idle notices already sent, one per idle spell (leases.ts). */
  idleFlagged: (p: string, e: string, r: string, since: number) => `${P}idle-flagged/${p}/${e}/${r}/${since}`,
  /** A running portal replica, on its lease (health.ts). */
  replica: (id: string) => `${P}replicas/${id}`,
  replicas: () => `${P}replicas/`,
  /** Portal secrets (signing keys, cookie keys), generated on first start. */
  secret: (name: string) => `${P}secrets/${name}`,
};

/** `rlz.exp.proj` for a realization record. */
export function realizationId(r: Pick<RealizationRecord, "name" | "experiment" | "project">): string {
  return `${r.name}.${r.experiment}.${r.project}`;
}
