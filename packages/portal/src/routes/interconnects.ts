/**
 * Interconnects: the wide-area links between facilities' gateway ports, part
 * of the resource internet the realization engine embeds experiments in (a
 * link crossing one is external). Administrators put and delete them; anyone
 * who may read facilities may read them. Each change bumps the facility epoch,
 * so the next realization sees it.
 */
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { Interconnect } from "@merge/xir";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { Batch, list, readDoc } from "../documents.ts";
import { badRequest, notFound } from "../errors.ts";
import { readFacility } from "../facility-record.ts";
import { keys } from "../objects.ts";
import * as S from "../schemas.ts";
import { routes } from "./declare.ts";

// Ids name the pair they join (`phobos-deimos`): a name with hyphens.
const Params = Type.Object(
  {
    interconnect: Type.String({
      pattern: "^[a-z][a-z0-9-]{0,64}$",
      description: "interconnect id: lowercase letters, digits and hyphens, starting with a letter",
    }),
  },
  { additionalProperties: false },
);

const End = Type.Object(
  {
    facility: S.Name("facility name"),
    resource: Type.String({ minLength: 1, description: "the gateway's resource id in the facility's model" }),
    port: Type.String({ minLength: 1, description: "the gateway port (role gateway)" }),
  },
  { additionalProperties: false },
);

const Body = Type.Object(
  {
    a: End,
    b: End,
    capacityBps: Type.Number({ minimum: 1, description: "bits/s" }),
    latencyNs: Type.Number({ minimum: 0, description: "one-way latency, ns" }),
    shared: Type.Optional(Type.Boolean({ description: "shared with other traffic (default true: the wide area)" })),
  },
  { additionalProperties: false },
);

const Wire = Type.Object({
  id: Type.String(),
  a: End,
  b: End,
  capacityBps: Type.Number(),
  latencyNs: Type.Number(),
  shared: Type.Boolean(),
});

const toWire = (ic: Interconnect) => ({
  id: ic.id,
  a: ic.a,
  b: ic.b,
  capacityBps: ic.capacity,
  latencyNs: ic.latency,
  shared: ic.shared,
});

/** Every interconnect stored. */
export function listInterconnects(ctx: Pick<PortalContext, "store">): Promise<Interconnect[]> {
  return list<Interconnect>(ctx.store, keys.interconnects());
}

export const interconnectRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store } = ctx;
  const api = routes(app);
  const tags = "facilities";
  /** Every change bumps the facility epoch, so the next realization sees it. */
  const commit = (batch: Batch, id: string) =>
    batch
      .put(keys.facilityEpoch(), { changed: new Date().toISOString(), by: `interconnect ${id}` })
      .commit(store, `interconnect ${id} changed meanwhile; try again`);

  api.get(
    "/interconnects",
    {
      access: { object: "facility", action: "read" },
      tags,
      summary: "The wide-area links between facilities' gateways",
      answer: Type.Array(Wire),
    },
    async () => (await listInterconnects(ctx)).map(toWire),
  );

  api.put(
    "/interconnects/:interconnect",
    {
      access: { object: "facility", action: "update" },
      tags,
      summary: "Create or replace an interconnect between two facilities' gateway ports",
      params: Params,
      body: Body,
      answer: Wire,
    },
    async (req) => {
      const { a, b } = req.body;
      if (a.facility === b.facility)
        throw badRequest(
          `b.facility: both ends are in ${a.facility}; an interconnect joins two facilities`,
          "b.facility",
        );
      for (const [side, end] of [
        ["a", a],
        ["b", b],
      ] as const) {
        const f = await readFacility(store, end.facility);
        if (f === undefined) throw badRequest(`${side}.facility: no facility ${end.facility}`, `${side}.facility`);
        const r = f.record.model.resources.find((x) => x.id === end.resource);
        if (r === undefined)
          throw badRequest(
            `${side}.resource: facility ${end.facility} has no resource ${end.resource}`,
            `${side}.resource`,
          );
        const p = r.ports.find((x) => x.name === end.port);
        const gateways = r.ports.filter((x) => x.role === "gateway").map((x) => x.name);
        if (p?.role !== "gateway")
          throw badRequest(
            `${side}.port: ${end.resource} of ${end.facility} has no gateway port ${end.port} (gateway ports: ${gateways.join(", ") || "none"})`,
            `${side}.port`,
          );
      }
      const ic: Interconnect = {
        id: req.params.interconnect,
        a,
        b,
        capacity: req.body.capacityBps,
        latency: req.body.latencyNs,
        shared: req.body.shared ?? true,
      };
      await commit(new Batch().put(keys.interconnect(ic.id), ic), ic.id);
      return toWire(ic);
    },
  );

  api.delete(
    "/interconnects/:interconnect",
    { access: { object: "facility", action: "delete" }, tags, params: Params, answer: null },
    async (req) => {
      const id = req.params.interconnect;
      const k = keys.interconnect(id);
      if ((await readDoc<Interconnect>(store, k)) === undefined) throw notFound("interconnect", id);
      await commit(new Batch().delete(k), id);
    },
  );
};
