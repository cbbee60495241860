/**
 * XDCs (experiment development containers) as portal objects: `x0.myproj` is
 * XDC `x0` of project `myproj`, a container on the XDC host with the project's
 * members as accounts (their uids and SSH keys), reached with `ssh -J` through
 * the jump host.
 *
 *   GET    /xdcs                              XDCs of the caller's projects (administrators: all)
 *   GET    /xdcs/jump                         where the jump host listens ({host, port})
 *   GET    /projects/:project/xdcs            the project's XDCs       (xdc read: members)
 *   POST   /projects/:project/xdcs            {name, jupyter?}          (xdc create: maintainers)
 *   GET    /projects/:project/xdcs/:xdc                                 (xdc read)
 *   DELETE /projects/:project/xdcs/:xdc                                 (xdc delete: maintainers)
 *   POST   /projects/:project/xdcs/:xdc/jupyter, /xdc/:xdc/jupyter/*   Jupyter's proxy (jupyter.ts)
 *   PUT    /projects/:project/xdcs/:xdc/attachment    attach to a materialization (attach.ts)
 *   DELETE /projects/:project/xdcs/:xdc/attachment    detach
 *
 * A project the caller may not see is a 404 here as everywhere. Accounts
 * follow the store: a watch on users, keys and memberships re-sends every
 * affected XDC its accounts and the jump host its view (only active users;
 * only their own projects' XDCs); a deleted project's XDCs are deleted; an
 * XDC attached to a materialization that is being dematerialized (or gone) is
 * detached (its tunnel removed; the infrapod's side goes with the infrapod).
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { type Store, updateJSON } from "@merge/store";
import Type from "typebox";
import { listingRoles } from "../access.ts";
import type { Xdc } from "../client/index.ts";
import type { PortalContext } from "../context.ts";
import { Batch, list, read } from "../documents.ts";
import { conflict, notFound, PortalError } from "../errors.ts";
import { keys, type Member, type Project } from "../objects.ts";
import { allows } from "../policy.ts";
import * as S from "../schemas.ts";
import type { PortalPlugin } from "../server.ts";
import { attachRoutes, detachBoth, parseMzid } from "./attach.ts";
import type { JumpAccount, JumpApi, XdcAccount, XdcHostApi, XdcSpec } from "./host.ts";
import { idKeys, projectAccounts, unixId } from "./ids.ts";
import { jupyterKeys, jupyterProxy, jupyterToken, newJupyterToken } from "./jupyter.ts";
import { mergeKey } from "./merge-key.ts";

/** An XDC as the portal stores it: the API's `Xdc`, in one of its two states. */
export interface XdcRecord extends Xdc {
  state: "creating" | "running";
}

export const xdcKeys = {
  xdc: (p: string, x: string) => `portal/xdcs/${p}/${x}`,
  project: (p: string) => `portal/xdcs/${p}/`,
  all: () => "portal/xdcs/",
};

export interface XdcPluginOptions {
  host: XdcHostApi;
  jump?: JumpApi;
  /** Called after every sync of accounts with the time it began (ms since the epoch; tests wait on it). */
  onSync?: (began: number) => void;
}

export const XdcT = Type.Object({
  name: Type.String(),
  project: Type.String(),
  id: Type.String(),
  creator: Type.String(),
  created: Type.String(),
  jupyter: Type.Boolean(),
  hostname: Type.String(),
  address: Type.String(),
  state: Type.String(),
  attached: Type.Optional(Type.String({ description: "the materialization it is attached to" })),
  attachedAddress: Type.Optional(Type.String({ description: "its address on that infranet" })),
});
const NewXdc = Type.Object(
  {
    name: S.Name("XDC name (x0 in x0.myproj)"),
    jupyter: Type.Optional(Type.Boolean({ description: "run Jupyter, reached at /xdc/<name.project>/jupyter/" })),
  },
  { additionalProperties: false },
);
const ProjectParams = Type.Object({ project: S.Name("project name") }, { additionalProperties: false });
const XdcParams = Type.Object(
  { project: S.Name("project name"), xdc: S.Name("XDC name") },
  { additionalProperties: false },
);

/** The XDC routes and the account sync, as a portal plugin. */
export function xdcPlugin(opts: XdcPluginOptions): PortalPlugin {
  return async (app, { ctx }) => {
    await app.register(xdcRoutes, { ctx, ...opts });
  };
}

export const xdcRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext } & XdcPluginOptions> = async (app, o) => {
  const { ctx, host, jump } = o;
  const { store } = ctx;
  const sync = new AccountSync(ctx, host, jump, o.onSync);
  await sync.start();
  app.addHook("onClose", async () => sync.stop());
  await app.register(jupyterProxy, { ctx });
  await app.register(attachRoutes, { ctx, host });

  app.get(
    "/xdcs",
    {
      config: { access: { object: "xdc", action: "read", list: true } },
      schema: {
        tags: ["xdcs"],
        summary: "XDCs of the caller's projects",
        response: { 200: Type.Array(XdcT), ...S.errors },
      },
    },
    async (req) => {
      const me = req.principal!.user;
      const [all, mine] = await Promise.all([
        list<XdcRecord>(store, xdcKeys.all()),
        list<Member>(store, keys.memberships(me.name)),
      ]);
      const roleOf = new Map(mine.map((m) => [m.project, m]));
      return all.filter((x) => allows(ctx.policy, "xdc", "any", "read", listingRoles(me, roleOf.get(x.project))));
    },
  );

  app.get(
    "/xdcs/jump",
    {
      config: { access: { object: "xdc", action: "read", list: true } },
      schema: {
        tags: ["xdcs"],
        summary: "Where the SSH jump host listens",
        response: { 200: Type.Object({ host: Type.String(), port: Type.Integer() }), ...S.errors },
      },
    },
    async () => {
      if (jump === undefined) throw new PortalError("not_found", "this portal runs no SSH jump host");
      return { host: jump.host, port: jump.port };
    },
  );

  app.get(
    "/projects/:project/xdcs",
    {
      config: { access: { object: "xdc", action: "read" } },
      schema: { tags: ["xdcs"], params: ProjectParams, response: { 200: Type.Array(XdcT), ...S.errors } },
    },
    async (req) => list<XdcRecord>(store, xdcKeys.project(req.params.project)),
  );

  app.get(
    "/projects/:project/xdcs/:xdc",
    {
      config: { access: { object: "xdc", action: "read" } },
      schema: { tags: ["xdcs"], params: XdcParams, response: { 200: XdcT, ...S.errors } },
    },
    async (req) => {
      const x = await read<XdcRecord>(store, xdcKeys.xdc(req.params.project, req.params.xdc));
      if (x === undefined) throw notFound("XDC", `${req.params.xdc}.${req.params.project}`);
      return x;
    },
  );

  app.post(
    "/projects/:project/xdcs",
    {
      config: { access: { object: "xdc", action: "create" } },
      schema: {
        tags: ["xdcs"],
        summary: "Create an XDC: a container with the project's members as accounts, reached with ssh -J",
        params: ProjectParams,
        body: NewXdc,
        response: { 201: XdcT, ...S.errors, 502: S.ErrorBody },
      },
    },
    async (req, reply) => {
      const { project } = req.params;
      const id = `${req.body.name}.${project}`;
      const rec: XdcRecord = {
        name: req.body.name,
        project,
        id,
        creator: req.principal!.user.name,
        created: new Date().toISOString(),
        jupyter: req.body.jupyter ?? false,
        hostname: id.replace(/\./g, "-"),
        address: "",
        state: "creating",
      };
      const key = xdcKeys.xdc(project, rec.name);
      // The name is taken before the host is asked, so two creates of one name never both run.
      if (!(await new Batch().absent(key).put(key, rec).tryCommit(store))) throw conflict(`XDC ${id} already exists`);
      try {
        if (rec.jupyter) await newJupyterToken(store, project, rec.name);
        const status = await host.create(await sync.spec(rec));
        const done: XdcRecord = { ...rec, address: status.address, hostname: status.hostname, state: "running" };
        await new Batch().put(key, done).commit(store, "the XDC changed meanwhile");
        sync.schedule();
        return reply.code(201).send(done);
      } catch (e) {
        await host.delete(id).catch(() => {});
        await store.delete(key);
        await store.delete(jupyterKeys.token(project, rec.name));
        if (e instanceof PortalError) throw e;
        throw new PortalError("internal", `the XDC host could not create ${id}: ${(e as Error).message}`);
      }
    },
  );

  app.delete(
    "/projects/:project/xdcs/:xdc",
    {
      config: { access: { object: "xdc", action: "delete" } },
      schema: { tags: ["xdcs"], params: XdcParams, response: { 204: Type.Null(), ...S.errors } },
    },
    async (req, reply) => {
      const key = xdcKeys.xdc(req.params.project, req.params.xdc);
      const x = await read<XdcRecord>(store, key);
      if (x === undefined) throw notFound("XDC", `${req.params.xdc}.${req.params.project}`);
      await detachBoth(ctx, host, x);
      await host.delete(x.id);
      await store.delete(key);
      await store.delete(jupyterKeys.token(x.project, x.name));
      sync.schedule();
      return reply.code(204).send(null);
    },
  );
};

/** Prefixes whose changes can change some XDC's accounts or the jump host's view. */
const WATCHED = [
  "portal/users/",
  "portal/keys/",
  "portal/members/",
  "portal/xdcs/",
  "portal/projects/",
  "portal/materializations/",
];

/**
 * Keeps every XDC's accounts and the jump host's view equal to the store: on start, and after any change
 * under WATCHED (debounced), it recomputes both and sends what differs from what was last sent.
 */
class AccountSync {
  private watch: { cancel(): Promise<void> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly sent = new Map<string, string>();
  private stopped = false;
  private readonly store: Store;

  constructor(
    private readonly ctx: PortalContext,
    private readonly host: XdcHostApi,
    private readonly jump: JumpApi | undefined,
    private readonly onSync: ((began: number) => void) | undefined,
  ) {
    this.store = ctx.store;
  }

  async start(): Promise<void> {
    this.watch = await this.store.watch("portal/", 0, (e) => {
      if (WATCHED.some((p) => e.kv.key.startsWith(p))) this.schedule();
    });
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.watch?.cancel();
    await this.running;
  }

  schedule(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.running
        .then(() => this.syncAll())
        .catch((e: unknown) => {
          process.stderr.write(`portal: XDC account sync failed: ${(e as Error).message}\n`);
        });
    }, 50);
  }

  /** The host's spec of an XDC: the project's active members with their ids and keys. */
  async spec(x: XdcRecord): Promise<XdcSpec> {
    return {
      id: x.id,
      project: x.project,
      gid: await unixId(this.store, idKeys.project(x.project)),
      accounts: await this.accounts(x.project),
      jupyter: x.jupyter,
      ...(x.jupyter ? { jupyterToken: await jupyterToken(this.store, x.project, x.name) } : {}),
    };
  }

  private accounts(project: string): Promise<XdcAccount[]> {
    const ws = this.ctx.workspace;
    return projectAccounts(this.store, project, (user, uid) =>
      mergeKey(ws.homeDir(user), user, uid, (m) => console.error(`xdc: ${m}`)),
    );
  }

  private async syncAll(): Promise<void> {
    const began = Date.now();
    const xdcs = (await list<XdcRecord>(this.store, xdcKeys.all())).filter((x) => x.state === "running");
    const byUser = new Map<string, JumpAccount>();
    const projects = new Map<string, XdcAccount[]>();
    for (const x of xdcs) {
      if (!projects.has(x.project)) {
        if ((await read<Project>(this.store, keys.project(x.project))) === undefined) {
          // The project was deleted: its XDCs go with it (container first, then the record).
          await this.host.delete(x.id);
          await this.store.delete(xdcKeys.xdc(x.project, x.name));
          await this.store.delete(jupyterKeys.token(x.project, x.name));
          continue;
        }
        projects.set(x.project, await this.accounts(x.project));
      }
      if (x.attached) {
        const mz = parseMzid(x.attached);
        if (!(await this.ctx.infranets?.live(mz.project, mz.experiment, mz.realization))) {
          // Dematerialized (or going): the infrapod's endpoint goes with it; the XDC's tunnel goes here.
          await this.host.detach(x.id);
          await updateJSON<XdcRecord>(this.store, xdcKeys.xdc(x.project, x.name), (cur) =>
            cur !== undefined && cur.attached === x.attached
              ? { ...cur, attached: undefined, attachedAddress: undefined }
              : undefined,
          );
        }
      }
      const spec = await this.spec(x);
      const text = JSON.stringify(spec);
      if (this.sent.get(x.id) !== text) {
        await this.host.setAccounts(x.id, spec.accounts, spec.gid);
        this.sent.set(x.id, text);
      }
      for (const a of spec.accounts) {
        const j = byUser.get(a.name) ?? { ...a, targets: [] };
        j.targets.push({ id: x.id, hostname: x.hostname, address: x.address });
        byUser.set(a.name, j);
      }
    }
    for (const id of this.sent.keys()) if (!xdcs.some((x) => x.id === id)) this.sent.delete(id);
    this.jump?.update([...byUser.values()]);
    this.onSync?.(began);
  }
}
