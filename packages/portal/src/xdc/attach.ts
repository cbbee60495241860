/**
 * Attach and detach: an XDC joins a materialization's infranet over WireGuard.
 *
 *   PUT    /projects/:project/xdcs/:xdc/attachment   {materialization: "r1.exp.myproj"}  (xdc update: members)
 *   DELETE /projects/:project/xdcs/:xdc/attachment                                       (xdc update)
 *
 * The caller must also be allowed to read the realization (the policy's
 * `realization read` on its experiment); a materialization they may not see
 * is a 404 like one that does not exist. An XDC attaches to its own project's
 * materializations, to one at a time: asked for another, 409 naming the one it
 * is attached to.
 *
 * Keys: the XDC host makes the XDC's key pair and gives the public key; the
 * facility's infrapod makes its own and answers with its public key, port and
 * the XDC's infranet address; the portal passes those public values between
 * them and keeps only the materialization's name in the XDC's record.
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { updateJSON } from "@merge/store";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { read } from "../documents.ts";
import { conflict, notFound, PortalError } from "../errors.ts";
import { type Experiment, keys } from "../objects.ts";
import { allows } from "../policy.ts";
import * as S from "../schemas.ts";
import type { XdcAttachment, XdcHostApi } from "./host.ts";
import { type XdcRecord, XdcT, xdcKeys } from "./plugin.ts";

/** Materializations' infranets as the materializations plugin offers them (absent without it). */
export interface InfranetAttach {
  attach(
    project: string,
    experiment: string,
    realization: string,
    peer: string,
    publicKey: string,
  ): Promise<XdcAttachment>;
  detach(project: string, experiment: string, realization: string, peer: string): Promise<void>;
  /** Whether the materialization is there and not being dematerialized. */
  live(project: string, experiment: string, realization: string): Promise<boolean>;
}

const MZ = /^([a-z][a-z0-9]{0,31})\.([a-z][a-z0-9]{0,31})\.([a-z][a-z0-9]{0,31})$/;

/** `r1.exp.myproj` → its parts; a clear 400 otherwise. */
export function parseMzid(id: string): { realization: string; experiment: string; project: string } {
  const m = MZ.exec(id);
  if (!m)
    throw new PortalError(
      "bad_request",
      `materialization: '${id}' is not realization.experiment.project (lowercase letters and digits)`,
    );
  return { realization: m[1] as string, experiment: m[2] as string, project: m[3] as string };
}

const XdcParams = Type.Object(
  { project: S.Name("project name"), xdc: S.Name("XDC name") },
  { additionalProperties: false },
);
const AttachBody = Type.Object(
  {
    materialization: Type.String({
      minLength: 1,
      maxLength: 100,
      description: "the materialization to attach to: realization.experiment.project",
    }),
  },
  { additionalProperties: false },
);

const attachedElsewhere = (id: string, mzid: string) =>
  conflict(`XDC ${id} is attached to ${mzid}; detach it first (mrg xdc detach ${id})`);

function infranets(ctx: PortalContext): InfranetAttach {
  if (ctx.infranets === undefined)
    throw new PortalError("not_found", "this portal runs no materializations, so there is nothing to attach to");
  return ctx.infranets;
}

/** Detach `x` on both sides (the XDC's tunnel, the infrapod's peer); the record keeps what it had. */
export async function detachBoth(ctx: PortalContext, host: XdcHostApi, x: XdcRecord): Promise<void> {
  if (!x.attached) return;
  await host.detach(x.id);
  const mz = parseMzid(x.attached);
  await ctx.infranets?.detach(mz.project, mz.experiment, mz.realization, x.id).catch(() => {
    // The materialization went meanwhile: its infrapod took the endpoint with it.
  });
}

export const attachRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext; host: XdcHostApi }> = async (app, o) => {
  const { ctx, host } = o;
  const { store } = ctx;

  app.put(
    "/projects/:project/xdcs/:xdc/attachment",
    {
      config: { access: { object: "xdc", action: "update" } },
      schema: {
        tags: ["xdcs"],
        summary: "Attach the XDC to a materialization's infranet (WireGuard): its nodes answer by name",
        params: XdcParams,
        body: AttachBody,
        response: { 200: XdcT, ...S.errors, 502: S.ErrorBody },
      },
    },
    async (req) => {
      const { project, xdc } = req.params;
      const key = xdcKeys.xdc(project, xdc);
      const id = `${xdc}.${project}`;
      const mzid = req.body.materialization;
      const mz = parseMzid(mzid);
      if (mz.project !== project)
        throw new PortalError(
          "bad_request",
          `materialization: ${mzid} is of project ${mz.project}; XDC ${id} attaches to project ${project}'s materializations`,
        );
      const exp = await read<Experiment>(store, keys.experiment(mz.project, mz.experiment));
      const roles = new Set(req.roles);
      if (exp?.creator === req.principal!.user.name) roles.add("Experiment.Creator");
      if (exp === undefined || !allows(ctx.policy, "realization", exp.visibility, "read", roles))
        throw notFound("materialization", mzid);
      const door = infranets(ctx);
      const x = await read<XdcRecord>(store, key);
      if (x === undefined) throw notFound("XDC", id);
      if (x.attached && x.attached !== mzid) throw attachedElsewhere(id, x.attached);
      if (!(await door.live(mz.project, mz.experiment, mz.realization)))
        throw new PortalError("not_found", `${mzid} is not materialized`);
      // Claim the attachment first, so two attaches of one XDC never both run.
      const claimed = await updateJSON<XdcRecord>(store, key, (cur) => {
        if (cur === undefined) throw notFound("XDC", id);
        if (cur.attached && cur.attached !== mzid) throw attachedElsewhere(id, cur.attached);
        return cur.attached === mzid ? undefined : { ...cur, attached: mzid };
      });
      const before = claimed.value as XdcRecord;
      try {
        const publicKey = await host.publicKey(id);
        const grant = await door.attach(mz.project, mz.experiment, mz.realization, id, publicKey);
        await host.attach(id, grant);
        const done = await updateJSON<XdcRecord>(store, key, (cur) =>
          cur === undefined ? undefined : { ...cur, attached: mzid, attachedAddress: grant.address },
        );
        return done.value ?? before;
      } catch (e) {
        if (!claimed.written) throw e;
        // Nothing stays half attached: the facility's peer, the XDC's tunnel and the claim all go.
        await door.detach(mz.project, mz.experiment, mz.realization, id).catch(() => {});
        await host.detach(id).catch(() => {});
        await updateJSON<XdcRecord>(store, key, (cur) =>
          cur?.attached === mzid ? { ...cur, attached: undefined, attachedAddress: undefined } : undefined,
        );
        if (e instanceof PortalError) throw e;
        throw new PortalError("internal", `could not attach ${id} to ${mzid}: ${(e as Error).message}`);
      }
    },
  );

  app.delete(
    "/projects/:project/xdcs/:xdc/attachment",
    {
      config: { access: { object: "xdc", action: "update" } },
      schema: {
        tags: ["xdcs"],
        summary: "Detach the XDC from the materialization it is attached to (no error if it is not attached)",
        params: XdcParams,
        response: { 200: XdcT, ...S.errors },
      },
    },
    async (req) => {
      const { project, xdc } = req.params;
      const key = xdcKeys.xdc(project, xdc);
      const x = await read<XdcRecord>(store, key);
      if (x === undefined) throw notFound("XDC", `${xdc}.${project}`);
      await detachBoth(ctx, host, x);
      const done = await updateJSON<XdcRecord>(store, key, (cur) =>
        cur?.attached ? { ...cur, attached: undefined, attachedAddress: undefined } : undefined,
      );
      return done.value ?? x;
    },
  );
};
