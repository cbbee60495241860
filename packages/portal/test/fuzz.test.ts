/**
 * Fuzz of every route in the portal's OpenAPI document (`/openapi.json`),
 * with the other rooms' plugins `npm start` registers: for each route and
 * method, as an activated non-admin user and unauthenticated, it sends
 * malformed JSON, wrong top-level types, each body and query field with the
 * wrong type, a huge string, control characters (NUL included) and a path
 * traversal, each path parameter malformed, a wrong content type and a 50 MB
 * body. No answer may be a 5xx, the portal keeps answering, and nothing lands
 * outside its data directory. Driven by the document, so a new route is
 * fuzzed without touching this file. Path parameters otherwise name real
 * objects (the user's project, experiment, revision 1, a realization), so the
 * requests reach the handlers; deleting routes go last.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { credentialsConnector, materializationPlugin } from "../src/materialize/index.ts";
import { chainXir, type Harness, startHarness } from "./harness.ts";

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  const?: unknown;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  format?: string;
  $ref?: string;
}
interface Operation {
  parameters?: { in: string; name: string; schema?: Schema; required?: boolean }[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
}

let h: Harness;
let token: string;
/** Real objects the user may see, by path parameter name. */
const fixtures: Record<string, string> = {};

before(async () => {
  h = await startHarness({
    plugins: [
      materializationPlugin({ connect: credentialsConnector(join("/nonexistent", "creds")), backoffMs: 60_000 }),
    ],
  });
  const fz = await h.user("fz");
  token = fz.token as string;
  await fz.createExperiment("fz", { name: "exp" });
  await fz.push("fz", "exp", chainXir("exp", 2), "xir");
  await fz.realize("fz", "exp", { name: "rlz" });
  Object.assign(fixtures, {
    user: "fz",
    project: "fz",
    experiment: "exp",
    revision: "1",
    realization: "rlz",
    facility: "phobos",
    pool: "pool",
    node: "n0",
    link: "l0",
    id: "aaaaaaaaaaaa",
    fingerprint: "A".repeat(43),
  });
});
after(async () => {
  await h?.stop();
});

/** Strings tried, in order, for a field whose schema has a pattern: the first that matches is the example. */
const CANDIDATES = ["fzx", "fz", "exp", "n0", "1", "phobos/n0", "http://127.0.0.1:9", "x", "a@b.org"];
const HUGE = "x".repeat(100_000);
const CONTROL = "a\u0000b\u0001c\nd\u001be\u007f";
const TRAVERSAL = "../../../../../../tmp/merge-fuzz-escaped";

/** A plausible value for a schema: the first literal of a union, a matching string for a pattern. */
function example(s: Schema | undefined): unknown {
  if (s === undefined) return {};
  if (s.const !== undefined) return s.const;
  const choices = literals(s);
  if (choices !== undefined) return choices[0];
  const alt = s.anyOf ?? s.oneOf;
  if (alt !== undefined) return example(alt[0]);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "string":
      if (s.format === "email") return "fz@example.org";
      if (s.pattern !== undefined) {
        const re = new RegExp(s.pattern, "u");
        return CANDIDATES.find((c) => re.test(c)) ?? "x";
      }
      return "";
    case "integer":
    case "number":
      return s.minimum ?? 1;
    case "boolean":
      return false;
    case "array":
      return [];
    case "null":
      return null;
    case "object": {
      const o: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.properties ?? {})) o[k] = example(v);
      return o;
    }
    default:
      return {};
  }
}

/** The values of an enum or a union of literals (`lang: ts | py | xir`), else undefined. */
function literals(s: Schema): unknown[] | undefined {
  if (s.enum !== undefined) return s.enum;
  // OpenAPI shows a literal as `const` or as a one-value `enum`.
  const alt = s.anyOf ?? s.oneOf;
  const one = (a: Schema) => (a.const !== undefined ? [a.const] : a.enum?.length === 1 ? a.enum : undefined);
  return alt?.every((a) => one(a) !== undefined) ? alt.flatMap((a) => one(a) as unknown[]) : undefined;
}

/**
 * The bodies mutations start from: the example, and the example with each other value of each literal
 * union field (so `filename` with a NUL byte is sent with `lang: ts` and `py` too, not only with XIR).
 */
function bases(s: Schema, example: Record<string, unknown>): Record<string, unknown>[] {
  const out = [example];
  for (const [field, f] of Object.entries(s.properties ?? {})) {
    for (const v of literals(f)?.slice(1) ?? []) out.push({ ...example, [field]: v });
  }
  return out;
}

/** A value of another JSON type than the schema's. */
function wrongType(s: Schema): unknown {
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  return type === "string" ? 12345 : type === "object" ? "not an object" : type === "array" ? { a: 1 } : "text";
}

interface Probe {
  what: string;
  method: string;
  path: string;
  query?: string;
  body?: string | Buffer;
  contentType?: string;
  /** Bytes announced and streamed (the 50 MB body), instead of `body`. */
  stream?: number;
}

/** Every probe for one route and method. */
function probes(method: string, template: string, op: Operation): Probe[] {
  const pathParams = (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
  const queryParams = (op.parameters ?? []).filter((p) => p.in === "query");
  const fill = (over: Record<string, string> = {}) =>
    template.replace(/\{(\w+)\}/g, (_, n: string) => over[n] ?? encodeURIComponent(fixtures[n] ?? "x"));
  const path = fill();
  const bodySchema = op.requestBody?.content?.["application/json"]?.schema;
  const base = bodySchema === undefined ? undefined : (example(bodySchema) as Record<string, unknown>);
  const json = (v: unknown) => JSON.stringify(v);
  const out: Probe[] = [{ what: "plausible", method, path, body: base === undefined ? undefined : json(base) }];

  for (const p of pathParams) {
    for (const [what, bad] of [
      ["traversal", "..%2F..%2Fetc%2Fpasswd"],
      ["dot-dot", ".."],
      ["NUL", "a%00b"],
      ["control", "a%0A%1Bb"],
      ["huge", "a".repeat(300)],
      ["bad percent-encoding", "%E0%A4%A"],
      ["unicode", "%C3%A9t%C3%A9"],
    ] as const) {
      out.push({ what: `path ${p} ${what}`, method, path: fill({ [p]: bad }), body: base && json(base) });
    }
  }
  for (const q of queryParams) {
    for (const [what, v] of [
      ["wrong type", "[object]"],
      ["huge", HUGE.slice(0, 4000)],
      ["control", CONTROL],
      ["traversal", TRAVERSAL],
    ] as const) {
      out.push({ what: `query ${q.name} ${what}`, method, path, query: `${q.name}=${encodeURIComponent(v)}` });
    }
    out.push({ what: `query ${q.name} twice`, method, path, query: `${q.name}=a&${q.name}=b` });
  }
  if (method === "GET" || method === "HEAD") return out;

  out.push(
    { what: "malformed JSON", method, path, body: '{"a": [1, 2' },
    { what: "not JSON at all", method, path, body: "\u0000\u0001garbage" },
    { what: "wrong content type", method, path, body: "a=b", contentType: "application/x-www-form-urlencoded" },
    { what: "50 MB body", method, path, stream: 50 * 1024 * 1024 },
  );
  for (const top of [[], "string", 42, null, true])
    out.push({ what: `top-level ${json(top)}`, method, path, body: json(top) });
  const starts = bodySchema === undefined || base === undefined ? [] : bases(bodySchema, base);
  for (const [field, schema] of Object.entries(bodySchema?.properties ?? {})) {
    for (const [i, start] of starts.entries()) {
      const mutate = (v: unknown) => json({ ...start, [field]: v });
      const from = i === 0 ? "" : ` (from ${json(start).slice(0, 60)})`;
      out.push(
        { what: `${field} wrong type${from}`, method, path, body: mutate(wrongType(schema)) },
        { what: `${field} control characters${from}`, method, path, body: mutate(CONTROL) },
        { what: `${field} traversal${from}`, method, path, body: mutate(TRAVERSAL) },
        { what: `${field} null${from}`, method, path, body: mutate(null) },
      );
    }
    // Size attacks once per field, from the last start (for pushes: XIR, not a program run for ~30 s).
    const last = starts[starts.length - 1];
    const mutate = (v: unknown) => json({ ...last, [field]: v });
    out.push(
      { what: `${field} huge`, method, path, body: mutate(HUGE) },
      {
        what: `${field} deep nesting`,
        method,
        path,
        body: mutate(JSON.parse(`${"[".repeat(2000)}${"]".repeat(2000)}`)),
      },
    );
  }
  return out;
}

/** Sends one probe over its own connection; resolves with the status (0: the portal closed without answering). */
function send(p: Probe, auth: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(p.path + (p.query ? `?${p.query}` : ""), h.url);
    const headers: Record<string, string | number> = {};
    if (auth) headers.authorization = `Bearer ${token}`;
    const body = p.body;
    if (body !== undefined || p.stream !== undefined) {
      headers["content-type"] = p.contentType ?? "application/json";
      headers["content-length"] = p.stream ?? Buffer.byteLength(body as string);
    }
    let answered = false;
    const req = request(url, { method: p.method, headers, agent: false }, (res) => {
      answered = true;
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", () => resolve(res.statusCode ?? 0));
    });
    // An early answer (413, 401) may close the connection under a body still being sent.
    req.on("error", (e) => (answered ? undefined : p.stream !== undefined ? resolve(0) : reject(e)));
    if (p.stream === undefined) {
      req.end(body);
      return;
    }
    const chunk = Buffer.alloc(1024 * 1024, "x");
    let left = p.stream;
    const pump = () => {
      while (left > 0 && !answered && !req.destroyed) {
        left -= chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      if (left <= 0) req.end();
    };
    pump();
  });
}

test("no route answers 5xx to malformed, hostile or huge input (from the OpenAPI document)", {
  timeout: 180_000,
}, async (t) => {
  const doc = (await (await fetch(`${h.url}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, Operation>>;
  };
  const all: Probe[] = [];
  const routes = new Set<string>();
  for (const [template, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      routes.add(`${method} ${template}`);
      all.push(...probes(method.toUpperCase(), template, op));
    }
  }
  // Deleting routes last, so the objects the others name stay there as long as possible.
  all.sort((a, b) => Number(a.method === "DELETE") - Number(b.method === "DELETE"));
  assert.ok(routes.size > 40, `the document lists the routes (${routes.size} routes and methods)`);
  assert.ok(
    all.some((p) => p.path.includes("/materialization")),
    "the materialization plugin's routes are in the document and fuzzed",
  );

  const failures: string[] = [];
  let sent = 0;
  const queue = all.flatMap((p) => [true, false].map((auth) => ({ p, auth })));
  const worker = async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      let status = await send(next.p, next.auth);
      // A server that answers a streamed body early (413, 401) closes the connection under it; the
      // reset can discard the answer before the client reads it. Sent again, a real 5xx shows.
      for (let again = 0; status === 0 && next.p.stream !== undefined && again < 2; again++) {
        status = await send(next.p, next.auth);
      }
      sent++;
      if (status >= 500 || status === 0) {
        failures.push(
          `${status} ${next.p.method} ${next.p.path}${next.p.query ? `?${next.p.query}` : ""} (${next.p.what}, ${next.auth ? "user" : "anonymous"})`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  t.diagnostic(`${sent} requests over ${routes.size} route and method pairs`);
  assert.deepEqual(failures, [], `${failures.length} of ${sent} requests got a 5xx or no answer`);
  assert.equal((await fetch(`${h.url}/health`)).status, 200, "the portal still answers");
  assert.equal(existsSync("/tmp/merge-fuzz-escaped"), false, "nothing written outside the data directory");
});
