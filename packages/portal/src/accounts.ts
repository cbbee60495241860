/**
 * Users and projects as a whole: registration (an inactive account plus its
 * personal project and home directory), project creation and deletion with
 * their directories. Store writes are single transactions; directories are
 * created after the write succeeds and removed after the delete succeeds, so
 * a crash leaves at worst an empty directory, never an object without one that
 * `ensureDirectories` cannot repair at start.
 */
import type { KeyValue, Store } from "@merge/store";
import { Batch, list, read } from "./documents.ts";
import { conflict, notFound } from "./errors.ts";
import { randomId } from "./identity.ts";
import {
  type ApiToken,
  keys,
  type Member,
  type MemberRole,
  type Project,
  type User,
  type Visibility,
} from "./objects.ts";
import { hashPassword } from "./password.ts";
import type { Workspace } from "./workspace.ts";

export interface Registration {
  name: string;
  email: string;
  fullName?: string;
  password?: string;
  admin?: boolean;
  /** Active from the start (admin-created accounts); registration leaves accounts pending. */
  active?: boolean;
}

/**
 * The batch that writes `project` with its creator as member (both sides of the membership), only
 * while no user or project has its name: users and projects share one namespace.
 */
function projectWithCreator(project: Project): Batch {
  const member: Member = { project: project.name, user: project.creator, role: "creator", added: project.created };
  return new Batch()
    .absent(keys.user(project.name))
    .absent(keys.project(project.name))
    .put(keys.project(project.name), project)
    .put(keys.member(project.name, project.creator), member)
    .put(keys.membership(project.creator, project.name), member);
}

const nameTaken = (name: string) => `the name '${name}' is taken by a user or project; choose another`;

export async function registerUser(store: Store, ws: Workspace, reg: Registration): Promise<User> {
  const now = new Date().toISOString();
  const user: User = {
    name: reg.name,
    id: randomId(16),
    generation: 0,
    generationAt: now,
    email: reg.email,
    fullName: reg.fullName ?? "",
    state: reg.active ? "active" : "pending",
    admin: reg.admin ?? false,
    created: now,
    ...(reg.password !== undefined ? { passwordHash: await hashPassword(reg.password) } : {}),
  };
  const project: Project = {
    name: reg.name,
    description: `personal project of ${reg.name}`,
    visibility: "private",
    personal: true,
    creator: reg.name,
    created: now,
  };
  await projectWithCreator(project).put(keys.user(reg.name), user).commit(store, nameTaken(reg.name));
  await ws.createHome(reg.name);
  await ws.createProject(reg.name);
  return user;
}

/**
 * Deletes a user with their personal project, keys, tokens and memberships: both sides of every
 * membership naming them (theirs in other projects, and others' in their personal project), so a
 * name registered again inherits nothing. Refused while their personal project has experiments or
 * they created other projects.
 */
export async function deleteUser(store: Store, ws: Workspace, name: string): Promise<void> {
  const user = await read<User>(store, keys.user(name));
  if (user === undefined) throw notFound("user", name);
  const exps = await store.range(keys.experiments(name), { limit: 1 });
  if (exps.length > 0)
    throw conflict(`user '${name}' still has experiments in their personal project; delete them first`);
  const memberships = await list<Member>(store, keys.memberships(name));
  const others = memberships.filter((m) => m.project !== name);
  const creatorOf = others.filter((m) => m.role === "creator").map((m) => m.project);
  if (creatorOf.length > 0) {
    throw conflict(`user '${name}' created project(s) ${creatorOf.join(", ")}; delete them or hand them over first`);
  }
  const coMembers = (await list<Member>(store, keys.members(name))).filter((m) => m.user !== name);
  // The record goes first (every token dies with it: the next account of this name has another id), then
  // the index entries and tokens in batches under the store's 128-op limit; a crash in between leaves
  // entries `upgradeAccounts` removes at the next start.
  await new Batch()
    .delete(keys.user(name))
    .delete(keys.project(name))
    .deletePrefix(keys.members(name))
    .deletePrefix(keys.memberships(name))
    .deletePrefix(keys.sshKeys(name))
    .commit(store, "conflict");
  await deleteInBatches(store, [
    ...others.map((m) => keys.member(m.project, name)),
    ...coMembers.map((m) => keys.membership(m.user, name)),
  ]);
  await revokeTokens(store, name);
  await ws.removeProject(name);
  await ws.removeHome(name);
}

/** Deletes keys in transactions of at most 100 ops. */
async function deleteInBatches(store: Store, doomed: string[]): Promise<void> {
  for (let i = 0; i < doomed.length; i += 100) {
    const b = new Batch();
    for (const k of doomed.slice(i, i + 100)) b.delete(k);
    await b.commit(store, "conflict");
  }
}

/** The user with a new token generation: every token issued before (API, access, refresh) stops working. */
export function nextGeneration(u: User): User {
  return { ...u, generation: u.generation + 1, generationAt: new Date().toISOString() };
}

/**
 * Deletes a user's API tokens. Tokens of an earlier generation are already refused; this keeps them
 * out of the token list. (The provider's refresh tokens name the old generation and are refused too.)
 */
export async function revokeTokens(store: Store, name: string): Promise<void> {
  const tokens = (await list<ApiToken>(store, keys.tokens())).filter((t) => t.user === name);
  await deleteInBatches(
    store,
    tokens.map((t) => keys.token(t.id)),
  );
}

/**
 * Brings stored accounts up to date at start: users stored before ids and token generations get them
 * (their API tokens are bound to them); tokens and member records of users that no longer exist, and
 * membership index entries without their member record, go (a user's deletion interrupted by a crash).
 */
export async function upgradeAccounts(store: Store): Promise<void> {
  // Index entries and tokens are read before the users: whatever is written with a user (registration writes
  // the user, member and index entry at once) is then seen with its user.
  const memberships = await store.range(keys.allMemberships());
  const members = await store.range(keys.allMembers());
  const tokens = await store.range(keys.tokens());
  const users = new Map<string, User>();
  for (const kv of await store.range(keys.users())) {
    const u = JSON.parse(kv.value) as Partial<User> & User;
    if (u.id !== undefined) {
      users.set(u.name, u);
      continue;
    }
    const upgraded: User = { ...u, id: randomId(16), generation: 0, generationAt: u.created };
    const ok = await new Batch().unchanged(kv.key, kv.modRevision).put(kv.key, upgraded).tryCommit(store);
    const now = ok ? upgraded : await read<User>(store, kv.key);
    if (now !== undefined) users.set(u.name, now);
  }
  const doomed: KeyValue[] = [];
  for (const kv of tokens) {
    const t = JSON.parse(kv.value) as Partial<ApiToken> & ApiToken;
    const u = users.get(t.user);
    if (u === undefined) doomed.push(kv);
    else if (t.userId === undefined) {
      await new Batch()
        .unchanged(kv.key, kv.modRevision)
        .put(kv.key, { ...t, userId: u.id, generation: u.generation })
        .tryCommit(store);
    }
  }
  const indexed = new Set<string>();
  for (const kv of members) {
    const m = JSON.parse(kv.value) as Member;
    if (users.has(m.user)) indexed.add(keys.membership(m.user, m.project));
    else doomed.push(kv);
  }
  for (const kv of memberships) if (!indexed.has(kv.key)) doomed.push(kv);
  // One transaction each, only if unchanged since read: these are rare leftovers, never live objects.
  for (const kv of doomed) await new Batch().unchanged(kv.key, kv.modRevision).delete(kv.key).tryCommit(store);
}

export async function createProject(
  store: Store,
  ws: Workspace,
  p: { name: string; description?: string; visibility?: Visibility; creator: string },
): Promise<Project> {
  const now = new Date().toISOString();
  const project: Project = {
    name: p.name,
    description: p.description ?? "",
    visibility: p.visibility ?? "private",
    personal: false,
    creator: p.creator,
    created: now,
  };
  await projectWithCreator(project).commit(store, nameTaken(p.name));
  await ws.createProject(p.name);
  return project;
}

export async function deleteProject(store: Store, ws: Workspace, name: string): Promise<void> {
  const project = await read<Project>(store, keys.project(name));
  if (project === undefined) throw notFound("project", name);
  if (project.personal) throw conflict(`'${name}' is a personal project; it goes away with its user`);
  const exps = await store.range(keys.experiments(name), { limit: 1 });
  if (exps.length > 0) throw conflict(`project '${name}' still has experiments; delete them first`);
  const members = await list<Member>(store, keys.members(name));
  const b = new Batch().delete(keys.project(name)).deletePrefix(keys.members(name));
  for (const m of members) b.delete(keys.membership(m.user, name));
  await b.commit(store, "conflict");
  await ws.removeProject(name);
}

export async function setMember(store: Store, project: string, user: string, role: MemberRole): Promise<Member> {
  const u = await read<User>(store, keys.user(user));
  if (u === undefined) throw notFound("user", user);
  const member: Member = { project, user, role, added: new Date().toISOString() };
  await new Batch()
    .put(keys.member(project, user), member)
    .put(keys.membership(user, project), member)
    .commit(store, "conflict");
  return member;
}

/** Creates any home or project directory missing after a crash between the store write and mkdir. */
export async function ensureDirectories(store: Store, ws: Workspace): Promise<void> {
  for (const u of await list<User>(store, keys.users())) await ws.createHome(u.name);
  for (const p of await list<Project>(store, keys.projects())) await ws.createProject(p.name);
}
