/**
 * JSON Schema (draft 2020-12) for XIR documents, and validation with exact error
 * paths (`nodes[3].sockets[0].addrs[1]`).
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import { OPS } from "./constraint.ts";
import type { Experiment } from "./experiment.ts";
import type { Facility, ResourceInternet } from "./facility.ts";

const scalar = { type: ["number", "string", "boolean"] };
const constraint = {
  type: "object",
  required: ["prop", "op", "value"],
  additionalProperties: false,
  properties: {
    prop: { type: "string", minLength: 1 },
    op: { enum: [...OPS] },
    value: { anyOf: [scalar, { type: "array", items: scalar }] },
  },
};
const constraints = { type: "array", items: { $ref: "#/$defs/constraint" } };
const properties = {
  type: "object",
  additionalProperties: { anyOf: [scalar, { type: "array", items: scalar }] },
};
const name = { type: "string", minLength: 1, maxLength: 253 };
const cidr = { type: "string", pattern: "^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$" };
const ipv4 = { type: "string", pattern: "^\\d{1,3}(\\.\\d{1,3}){3}$" };
const count = { type: "integer", minimum: 0 };

export const experimentSchema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "https://mergetb.org/xir/1.0/experiment.json",
  title: "XIR experiment",
  type: "object",
  required: ["xir", "name", "parameters", "nodes", "links"],
  additionalProperties: false,
  $defs: { constraint },
  properties: {
    xir: { const: "1.0" },
    name,
    parameters: {
      type: "object",
      additionalProperties: false,
      properties: {
        addressing: { enum: ["ipv4"] },
        routing: { enum: ["static"] },
        emulation: { enum: ["netem", "click"] },
        nameResolution: { enum: ["experiment", "infranet"] },
      },
    },
    nodes: {
      type: "array",
      items: {
        type: "object",
        required: ["name", "constraints", "sockets", "properties"],
        additionalProperties: false,
        properties: {
          name,
          image: { type: "string", minLength: 1 },
          constraints,
          properties,
          sockets: {
            type: "array",
            items: {
              type: "object",
              required: ["index", "addrs", "constraints"],
              additionalProperties: false,
              properties: { index: count, addrs: { type: "array", items: cidr }, constraints },
            },
          },
          ingress: {
            type: "array",
            items: {
              type: "object",
              required: ["protocol", "port"],
              additionalProperties: false,
              properties: {
                protocol: { enum: ["tcp", "udp", "http", "https"] },
                port: { type: "integer", minimum: 1, maximum: 65535 },
              },
            },
          },
          routes: {
            type: "array",
            items: {
              type: "object",
              required: ["dest", "gateway", "socket"],
              additionalProperties: false,
              properties: { dest: cidr, gateway: ipv4, socket: count },
            },
          },
        },
      },
    },
    links: {
      type: "array",
      items: {
        type: "object",
        required: ["name", "endpoints", "constraints", "properties"],
        additionalProperties: false,
        properties: {
          name,
          constraints,
          properties,
          endpoints: {
            type: "array",
            items: {
              type: "object",
              required: ["node", "socket"],
              additionalProperties: false,
              properties: { node: name, socket: count },
            },
          },
        },
      },
    },
  },
} as const;

const tagRanges = {
  type: "array",
  items: {
    type: "object",
    required: ["first", "last"],
    additionalProperties: false,
    properties: { first: count, last: count },
  },
};
const portRef = {
  type: "object",
  required: ["resource", "port"],
  additionalProperties: false,
  properties: { resource: name, port: name },
};

export const facilitySchema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "https://mergetb.org/xir/1.0/facility.json",
  title: "XIR facility resource model",
  type: "object",
  required: ["xir", "name", "resources", "cables", "tags"],
  additionalProperties: false,
  properties: {
    xir: { const: "1.0" },
    name,
    resources: {
      type: "array",
      items: {
        type: "object",
        required: ["id", "kind", "alloc", "props", "ports"],
        additionalProperties: false,
        properties: {
          id: name,
          kind: { enum: ["node", "switch", "emulator", "infrapod-server", "storage", "gateway"] },
          alloc: { type: "array", items: { enum: ["physical", "virtual"] } },
          props: { type: "object", additionalProperties: scalar },
          ports: {
            type: "array",
            items: {
              type: "object",
              required: ["name", "role", "capacity"],
              additionalProperties: false,
              properties: {
                name,
                role: { enum: ["infranet", "xpnet", "mgmt", "gateway"] },
                capacity: { type: "number", minimum: 0 },
                model: { type: "string" },
                mac: { type: "string" },
              },
            },
          },
          host: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$" },
          switch: {
            type: "object",
            required: ["layer", "network", "vxlan", "vlanDomain"],
            additionalProperties: false,
            properties: {
              layer: { enum: ["leaf", "fabric", "spine"] },
              network: { enum: ["infranet", "xpnet", "mgmt"] },
              vxlan: { type: "boolean" },
              vlanDomain: { type: "string" },
            },
          },
          virt: {
            type: "object",
            required: ["kinds"],
            additionalProperties: false,
            properties: {
              kinds: { type: "array", minItems: 1, uniqueItems: true, items: { enum: ["vm", "container"] } },
              overcommit: {
                type: "object",
                additionalProperties: false,
                properties: { cores: { type: "number", minimum: 1 }, memory: { type: "number", minimum: 1 } },
              },
              sharing: { enum: ["one-per-experiment"] },
            },
          },
        },
      },
    },
    cables: {
      type: "array",
      items: {
        type: "object",
        required: ["id", "ends"],
        additionalProperties: false,
        properties: { id: name, ends: { type: "array", minItems: 2, maxItems: 2, items: portRef } },
      },
    },
    tags: {
      type: "object",
      required: ["vlan", "vni"],
      additionalProperties: false,
      properties: { vlan: { type: "object", additionalProperties: tagRanges }, vni: tagRanges },
    },
    hosts: {
      type: "object",
      propertyNames: { pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$" },
      additionalProperties: {
        type: "object",
        additionalProperties: false,
        properties: {
          // Ranges are checked in code (`hostProblems`), whose errors say what would be valid.
          nat: {
            type: "object",
            required: ["address", "first", "last", "perNode"],
            additionalProperties: false,
            properties: {
              address: { type: "string" },
              first: { type: "integer" },
              last: { type: "integer" },
              perNode: { type: "integer" },
            },
          },
        },
      },
    },
  },
} as const;

export interface SchemaError {
  /** Path into the document, e.g. `nodes[3].sockets[0].addrs[1]`; empty for the root. */
  path: string;
  message: string;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: SchemaError[] };

const ajv = new Ajv2020({ allErrors: true, strict: false });
let experimentValidator: ValidateFunction | undefined;
let facilityValidator: ValidateFunction | undefined;

export function validateExperiment(doc: unknown): Validated<Experiment> {
  experimentValidator ??= ajv.compile(experimentSchema);
  return run<Experiment>(experimentValidator, doc);
}

export function validateFacility(doc: unknown): Validated<Facility> {
  facilityValidator ??= ajv.compile(facilitySchema);
  return run<Facility>(facilityValidator, doc);
}

export function validateResourceInternet(doc: unknown): Validated<ResourceInternet> {
  if (typeof doc !== "object" || doc === null || !Array.isArray((doc as ResourceInternet).facilities)) {
    return { ok: false, errors: [{ path: "facilities", message: "must be an array of facility models" }] };
  }
  const errors: SchemaError[] = [];
  (doc as ResourceInternet).facilities.forEach((f, i) => {
    const r = validateFacility(f);
    if (!r.ok) for (const e of r.errors) errors.push({ path: join(`facilities[${i}]`, e.path), message: e.message });
  });
  return errors.length ? { ok: false, errors } : { ok: true, value: doc as ResourceInternet };
}

function run<T>(validate: ValidateFunction, doc: unknown): Validated<T> {
  if (validate(doc)) return { ok: true, value: doc as T };
  return { ok: false, errors: dedupe((validate.errors ?? []).map(describe)) };
}

function describe(e: ErrorObject): SchemaError {
  let path = pointerToPath(e.instancePath);
  let message = e.message ?? "is invalid";
  if (e.keyword === "additionalProperties") {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    path = join(path, extra);
    message = "is not a known field";
  } else if (e.keyword === "required") {
    path = join(path, (e.params as { missingProperty: string }).missingProperty);
    message = "is required";
  } else if (e.keyword === "enum") {
    message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
  } else if (e.keyword === "const") {
    message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
  }
  return { path, message };
}

function pointerToPath(pointer: string): string {
  let out = "";
  for (const raw of pointer.split("/").slice(1)) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(seg) ? `[${seg}]` : out ? `.${seg}` : seg;
  }
  return out;
}

function join(base: string, seg: string): string {
  return base ? `${base}.${seg}` : seg;
}

function dedupe(errors: SchemaError[]): SchemaError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.path}\0${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function formatSchemaErrors(errors: readonly SchemaError[]): string {
  return errors.map((e) => `${e.path || "(document)"}: ${e.message}`).join("\n");
}
