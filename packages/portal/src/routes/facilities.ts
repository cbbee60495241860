/** Facilities (sites) with their resource models, the resources they offer, allocation state, usage, health. */
import { X509Certificate } from "node:crypto";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { formatSchemaErrors, validateFacility } from "@merge/xir";
import Type from "typebox";
import type { PortalContext } from "../context.ts";
import { Batch, list, readDoc, readFound } from "../documents.ts";
import { badRequest, conflict, notFound } from "../errors.ts";
import {
  deleteFacility,
  listFacilities,
  listFacilitySummaries,
  putFacility,
  readFacility,
  replaceFacility,
  summarizeFacility,
} from "../facility-record.ts";
import { type FacilityRecord, type FacilitySummary, keys, realizationId, type StoredFacility } from "../objects.ts";
import { listRealizations } from "../realization-record.ts";
import * as S from "../schemas.ts";
import { routes } from "./declare.ts";

/** `rlz.exp.proj` → `proj`. */
const projectOf = (id: string) => id.split(".")[2] ?? "";

const FacilityParams = Type.Object({ facility: S.Name("facility name") }, { additionalProperties: false });

/** The certificate's expiry, or a 400 naming the field when it is not a PEM X.509 certificate. */
export function certificateExpiry(pem: string): string {
  try {
    return new Date(new X509Certificate(pem).validTo).toISOString();
  } catch (e) {
    throw badRequest(`certificate: not a PEM X.509 certificate (${(e as Error).message})`, "certificate");
  }
}

function wireFacility(f: FacilitySummary) {
  return {
    name: f.name,
    description: f.description,
    endpoint: f.endpoint,
    state: f.state,
    registered: f.registered,
    updated: f.updated,
    resources: f.resources,
    hasCertificate: f.certificate !== "",
    certificateExpires: f.certificate === "" ? null : certificateExpiry(f.certificate),
  };
}

function checkModel(model: unknown, name: string) {
  const v = validateFacility(model);
  if (!v.ok) throw badRequest(`model: not a valid XIR facility: ${formatSchemaErrors(v.errors)}`, "model");
  if (v.value.name !== name) {
    throw badRequest(`model: the model is of facility '${v.value.name}', not '${name}'`, "model.name");
  }
  return v.value;
}

export const facilityRoutes: FastifyPluginAsyncTypebox<{ ctx: PortalContext }> = async (app, { ctx }) => {
  const { store } = ctx;
  const bodyLimit = ctx.config.maxModelBytes * 4;
  const api = routes(app);
  const tags = "facilities";

  api.get(
    "/facilities",
    { access: { object: "facility", action: "read" }, tags, answer: Type.Array(S.Facility) },
    async () => (await listFacilitySummaries(store)).map(wireFacility),
  );

  api.post(
    "/facilities",
    {
      access: { object: "facility", action: "create" },
      tags,
      summary: "Register a facility with its commander endpoint, certificate and resource model",
      body: S.NewFacility,
      bodyLimit,
      answer: S.Facility,
      status: 201,
    },
    async (req) => {
      const model = checkModel(req.body.model, req.body.name);
      if (req.body.certificate) certificateExpiry(req.body.certificate);
      const now = new Date().toISOString();
      const f: FacilityRecord = {
        name: req.body.name,
        description: req.body.description ?? "",
        endpoint: req.body.endpoint,
        certificate: req.body.certificate ?? "",
        state: req.body.state ?? "active",
        registered: now,
        updated: now,
        model,
      };
      await new Batch()
        .absent(keys.facility(f.name))
        .add(putFacility(f))
        .put(keys.facilityEpoch(), { changed: now, by: f.name })
        .commit(store, `facility ${f.name} is registered; update it instead`, `facility ${f.name}`);
      return wireFacility({ ...f, resources: f.model.resources.length });
    },
  );

  api.get(
    "/facilities/:facility",
    { access: { object: "facility", action: "read" }, tags, params: FacilityParams, answer: S.Facility },
    async (req) => {
      const { facility } = req.params;
      return wireFacility(
        summarizeFacility(await readFound<StoredFacility>(store, keys.facility(facility), "facility", facility)),
      );
    },
  );

  api.get(
    "/facilities/:facility/model",
    { access: { object: "facility", action: "read" }, tags, params: FacilityParams, answer: Type.Unknown() },
    async (req) => {
      const f = await readFacility(store, req.params.facility);
      if (f === undefined) throw notFound("facility", req.params.facility);
      return f.record.model;
    },
  );

  api.patch(
    "/facilities/:facility",
    {
      access: { object: "facility", action: "update" },
      tags,
      summary: "Update a facility: endpoint, certificate, activation state or resource model",
      params: FacilityParams,
      body: S.FacilityUpdate,
      bodyLimit,
      answer: S.Facility,
    },
    async (req) => {
      const k = keys.facility(req.params.facility);
      const doc = await readDoc<StoredFacility>(store, k);
      if (doc === undefined) throw notFound("facility", req.params.facility);
      const now = new Date().toISOString();
      const { model, ...rest } = req.body;
      if (rest.certificate) certificateExpiry(rest.certificate);
      const { model: _model, body: _body, ...prev } = doc.value;
      const next = { ...prev, ...rest, updated: now };
      const newModel = model === undefined ? undefined : checkModel(model, doc.value.name);
      await new Batch()
        .unchanged(k, doc.modRevision)
        .add(replaceFacility(doc.value, next, newModel))
        .put(keys.facilityEpoch(), { changed: now, by: next.name })
        .commit(store, "the facility changed meanwhile; try again", `facility ${next.name}`);
      const resources = newModel?.resources.length ?? summarizeFacility(doc.value).resources;
      return wireFacility({ ...next, resources });
    },
  );

  api.delete(
    "/facilities/:facility",
    { access: { object: "facility", action: "delete" }, tags, params: FacilityParams, answer: null },
    async (req) => {
      const table = await ctx.realizer.table();
      if ([...table.records()].some((r) => "facility" in r && r.facility === req.params.facility))
        throw conflict(`facility ${req.params.facility} has allocated resources; relinquish them first`);
      const doc = await readDoc<StoredFacility>(store, keys.facility(req.params.facility));
      if (doc === undefined) throw notFound("facility", req.params.facility);
      await new Batch()
        .unchanged(keys.facility(req.params.facility), doc.modRevision)
        .add(deleteFacility(req.params.facility))
        .put(keys.facilityEpoch(), { changed: new Date().toISOString(), by: req.params.facility })
        .commit(store, "the facility changed meanwhile; try again");
    },
  );

  api.get(
    "/resources",
    {
      access: { object: "resource", action: "read" },
      tags: "resources",
      summary:
        "Every testbed node of every facility: cores and memory used and free, and who holds them (as far as you may see)",
      querystring: Type.Object(
        {
          facility: Type.Optional(S.Name("facility")),
          allocated: Type.Optional(Type.Union([Type.Literal("true"), Type.Literal("false")])),
        },
        { additionalProperties: false },
      ),
      answer: Type.Array(S.Resource),
    },
    async (req) => {
      const [facilities, table, rlzs] = await Promise.all([
        listFacilities(store),
        ctx.realizer.table(),
        listRealizations(store, keys.allRealizations()),
      ]);
      const creator = new Map(rlzs.map((r) => [realizationId(r), r.creator]));
      const holders = new Map<string, { realization: string; project: string; user: string }[]>();
      // What nodes take of each resource: VMs their slice, a bare-metal node all of it.
      const taken = new Map<string, { cores: number; memory: number; whole: boolean }>();
      for (const a of table.records()) {
        if (a.kind !== "node" && a.kind !== "infrapod") continue;
        const k = `${a.facility}/${a.resource}`;
        if (a.kind === "node") {
          const t = taken.get(k) ?? { cores: 0, memory: 0, whole: false };
          if (a.mode === "physical") t.whole = true;
          else {
            t.cores += a.cores;
            t.memory += a.memory;
          }
          taken.set(k, t);
        }
        const h = holders.get(k) ?? [];
        if (!h.some((x) => x.realization === a.realization)) {
          h.push({
            realization: a.realization,
            project: projectOf(a.realization),
            user: creator.get(a.realization) ?? "",
          });
        }
        holders.set(k, h);
      }
      // Who holds what is visible to administrators and to members of the holding project.
      const me = req.principal!.user;
      const mine = new Set((await list<{ project: string }>(store, keys.memberships(me.name))).map((m) => m.project));
      const visible = (x: { project: string }) => me.admin || mine.has(x.project);
      const out = [];
      for (const f of facilities) {
        if (req.query.facility !== undefined && f.name !== req.query.facility) continue;
        for (const r of f.model.resources) {
          if (r.alloc.length === 0) continue;
          const h = holders.get(`${f.name}/${r.id}`) ?? [];
          if (req.query.allocated !== undefined && h.length > 0 !== (req.query.allocated === "true")) continue;
          const t = taken.get(`${f.name}/${r.id}`) ?? { cores: 0, memory: 0, whole: false };
          const total = { cores: num(r.props["proc.cores"]), memory: num(r.props["memory.capacity"]) };
          const used = t.whole ? total : { cores: t.cores, memory: t.memory };
          const seen = h.filter(visible);
          out.push({
            facility: f.name,
            id: r.id,
            kind: r.kind,
            alloc: r.alloc,
            props: r.props,
            allocated: h.length > 0,
            state: t.whole
              ? ("whole" as const)
              : used.cores === 0 && used.memory === 0
                ? ("free" as const)
                : used.cores >= total.cores || used.memory >= total.memory
                  ? ("full" as const)
                  : ("shared" as const),
            cores: { used: used.cores, total: total.cores },
            memory: { used: used.memory, total: total.memory },
            holders: seen,
            otherHolders: h.length - seen.length,
          });
        }
      }
      return out;
    },
  );

  api.get(
    "/usage",
    {
      access: { object: "usage", action: "read" },
      tags: "resources",
      summary: "Resources held per project and per user",
      answer: S.Usage,
    },
    async () => {
      const [table, rlzs] = await Promise.all([ctx.realizer.table(), listRealizations(store, keys.allRealizations())]);
      const creator = new Map(rlzs.map((r) => [realizationId(r), r.creator]));
      const byProject: Record<string, { resources: number; realizations: number }> = {};
      const byUser: Record<string, { resources: number; realizations: number }> = {};
      const tally = (m: typeof byProject, k: string) => {
        m[k] ??= { resources: 0, realizations: 0 };
        return m[k];
      };
      const seen = new Set<string>();
      for (const a of table.records()) {
        if (a.kind !== "node") continue;
        const k = `${a.realization}|${a.facility}/${a.resource}`;
        if (seen.has(k)) continue;
        seen.add(k);
        const project = projectOf(a.realization);
        const user = creator.get(a.realization) ?? "";
        tally(byProject, project).resources++;
        tally(byUser, user).resources++;
      }
      for (const r of rlzs) {
        if (r.state === "failed") continue;
        tally(byProject, r.project).realizations++;
        tally(byUser, r.creator).realizations++;
      }
      return { byProject, byUser };
    },
  );

  app.get(
    "/health",
    {
      config: { access: "public" },
      schema: { tags: ["health"], response: { 200: S.Health } },
    },
    async () => ({
      status: "ok" as const,
      store: store.backend,
      revision: await store.revision(),
      facilities: (await store.range(keys.facilities())).length,
    }),
  );
};

const num = (v: unknown): number => (typeof v === "number" ? v : 0);
