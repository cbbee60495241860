/**
 * Materializations API, a self-contained Fastify plugin: register it with the
 * portal context and a Materializer.
 *
 *   POST   /projects/:project/experiments/:experiment/realizations/:realization/materialization   202
 *   GET    …/materialization   status with per-facility, per-node and per-link detail
 *   DELETE …/materialization   dematerialize (202; completes in the background)
 *   POST   …/materialization/nodes/:node/power      {action: start|stop|reboot|cycle, hard?}
 *   POST   …/materialization/links/:link/emulation  {latencyNs?, lossFraction?, capacityBps?, toward?: node}
 *   POST   …/materialization/nodes/:node/exec       {argv, timeoutSec?} → NDJSON stream
 *   GET    …/materialization/nodes/:node/shell      WebSocket: an interactive shell (?tty=1&rows=&cols=),
 *                                                    or a command with its stdin (?argv=prog&argv=arg…&timeoutSec=)
 *
 * Access follows the realization's policy: materialize, dematerialize, power,
 * emulation and exec need `realization update`, status needs `realization read`.
 *
 * Units on the wire: base units, named in each field (latencyNs one way,
 * capacityBps, lossFraction 0..1), as XIR and the facility keep them; only the
 * field names change at this boundary. Exec (no stdin: it reads end of input
 * at once) answers one JSON object per line:
 * `{"stdout": text}`, `{"stderr": text}`, finally `{"exit": code}` (or
 * `{"error": message}` if the facility fails mid-stream).
 *
 * Shell frames: binary frames from the client are stdin, text frames are JSON
 * control messages `{"resize": {rows, cols}}` or `{"eof": true}`; binary frames
 * to the client are the shell's output, text frames `{"stderr": text}`, finally
 * `{"exit": code}` (or `{"error": message}`), and the socket closes. The
 * upgrade request authenticates like any call (`Authorization: Bearer …`).
 */
import { Readable } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import websocket from "@fastify/websocket";
import type { FastifyPluginAsync } from "fastify";
import Type from "typebox";
import type { WebSocket } from "ws";
import { apiEmulation, xirEmulationValues } from "../client/materialization.ts";
import type { PortalContext } from "../context.ts";
import * as S from "../schemas.ts";
import { mergeKey } from "../xdc/merge-key.ts";
import { facilityHealthProbe } from "./facility-health.ts";
import { HostWatch } from "./hosts.ts";
import { Materializer, type MaterializerOptions, type ShellInput } from "./materializer.ts";
import { type StorageKeys, StorageKeyWatch } from "./storage-keys.ts";

const NodeParams = Type.Object(
  {
    project: S.Name("project name"),
    experiment: S.Name("experiment name"),
    realization: S.Name("realization name"),
    node: Type.String({ minLength: 1, maxLength: 253, description: "experiment node name" }),
  },
  { additionalProperties: false },
);

const LinkParams = Type.Object(
  {
    project: S.Name("project name"),
    experiment: S.Name("experiment name"),
    realization: S.Name("realization name"),
    link: Type.String({ minLength: 1, maxLength: 253, description: "experiment link name" }),
  },
  { additionalProperties: false },
);

const PowerBody = Type.Object(
  {
    action: Type.Union(
      [
        Type.Literal("start"),
        Type.Literal("stop"),
        Type.Literal("reboot"),
        Type.Literal("cycle"),
        Type.Literal("reimage"),
      ],
      {
        description:
          "start: power on; stop: power off; reboot: shut down and start (hard: power cycle); cycle: power cycle; " +
          "reimage: wipe the node's disk back to its image and boot it, configured as at materialize",
      },
    ),
    hard: Type.Optional(Type.Boolean({ description: "reboot by power cycle instead of a shutdown" })),
  },
  { additionalProperties: false },
);

const PowerResult = Type.Object({
  node: Type.String(),
  resource: Type.String(),
  power: Type.String(),
  state: Type.String(),
});

const EmulationBody = Type.Object(
  {
    latencyNs: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 10e9, description: "one-way latency in nanoseconds (30 ms = 30000000)" }),
    ),
    lossFraction: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, description: "loss rate, a fraction 0..1 (1% = 0.01)" }),
    ),
    capacityBps: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, description: "capacity in bits/s (50 Mbit/s = 50000000)" }),
    ),
    toward: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "only the direction toward this endpoint's node; absent: every direction (a direction set apart loses its own value for the fields changed)",
      }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

const emulationValues = {
  capacityBps: Type.Optional(Type.Number({ description: "capacity in bits/s" })),
  latencyNs: Type.Optional(Type.Number({ description: "one-way latency in nanoseconds" })),
  lossFraction: Type.Optional(Type.Number({ description: "loss rate, a fraction 0..1" })),
};
const Emulation = Type.Object({
  ...emulationValues,
  toward: Type.Optional(
    Type.Array(Type.Object({ node: Type.String(), ...emulationValues }), {
      description: "directions set apart: their values replace the link's toward that node",
    }),
  ),
});

const EmulationResult = Type.Object({ link: Type.String(), emulator: Type.String(), emulation: Emulation });

const ExecBody = Type.Object(
  {
    argv: Type.Array(Type.String({ maxLength: 65_536 }), {
      minItems: 1,
      maxItems: 1024,
      description: "program and arguments (no shell)",
    }),
    timeoutSec: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 86_400, description: "kill the command after this long" }),
    ),
  },
  { additionalProperties: false },
);

const POWER = { start: "on", stop: "off", cycle: "cycle", reimage: "reimage" } as const;

const Params = Type.Object(
  { project: S.Name("project name"), experiment: S.Name("experiment name"), realization: S.Name("realization name") },
  { additionalProperties: false },
);

const Part = Type.Object({
  facility: Type.String(),
  want: Type.String(),
  delivered: Type.Boolean(),
  attempts: Type.Number(),
  lastError: Type.Optional(Type.String()),
  nextAttempt: Type.Optional(Type.String()),
  resources: Type.Array(Type.String()),
  fragments: Type.Number(),
});

const Record_ = Type.Object({
  id: Type.String(),
  project: Type.String(),
  experiment: Type.String(),
  realization: Type.String(),
  state: Type.String(),
  creator: Type.String(),
  created: Type.String(),
  updated: Type.String(),
  dematerializeAt: Type.Optional(Type.String()),
  facilities: Type.Array(Part),
});

const Status = Type.Object({
  id: Type.String(),
  project: Type.String(),
  experiment: Type.String(),
  realization: Type.String(),
  status: Type.String(),
  actions: Type.Number(),
  complete: Type.Number(),
  facilities: Type.Array(Type.Unknown()),
  nodes: Type.Array(Type.Unknown()),
  links: Type.Array(Type.Unknown()),
});

const ARG = { maxLength: 4096 };

const ShellQuery = Type.Object(
  {
    tty: Type.Optional(
      Type.String({ enum: ["0", "1", "true", "false"], description: "a pseudo-terminal for the shell" }),
    ),
    rows: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,3}$", description: "terminal rows, 1..9999" })),
    cols: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,3}$", description: "terminal columns, 1..9999" })),
    // One argv is a string, several an array (as the query string parser gives them).
    argv: Type.Optional(
      Type.Union([Type.String(ARG), Type.Array(Type.String(ARG), { minItems: 1, maxItems: 256 })], {
        description:
          "a command to run instead of the shell (program, then arguments, each its own argv=; no tty): binary frames are its stdin, {eof} closes it",
      }),
    ),
    timeoutSec: Type.Optional(
      Type.String({ pattern: "^[0-9]{1,5}(\\.[0-9]+)?$", description: "with argv: kill the command after this long" }),
    ),
  },
  { additionalProperties: false },
);

/** Frames held before the socket stops reading: a fast upload waits for the node, not in memory. */
const INPUT_HIGH_WATER = 64;

/** The client's frames as shell input; bad control messages are ignored, a closed socket ends the shell. */
function socketInput(socket: WebSocket, ac: AbortController): AsyncIterable<ShellInput> {
  const queue: ShellInput[] = [];
  let done = false;
  let wake = () => {};
  socket.on("message", (data, binary) => {
    if (queue.length >= INPUT_HIGH_WATER) socket.pause();
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (binary) queue.push({ stdin: new Uint8Array(buf) });
    else {
      try {
        const m = JSON.parse(buf.toString("utf8")) as { resize?: { rows?: unknown; cols?: unknown }; eof?: unknown };
        if (m.eof === true) queue.push({ eof: true });
        else if (m.resize && Number.isInteger(m.resize.rows) && Number.isInteger(m.resize.cols))
          queue.push({ resize: { rows: m.resize.rows as number, cols: m.resize.cols as number } });
      } catch {}
    }
    wake();
  });
  socket.on("close", () => {
    done = true;
    ac.abort();
    wake();
  });
  return (async function* () {
    for (;;) {
      while (queue.length) {
        yield queue.shift()!;
        if (queue.length < INPUT_HIGH_WATER / 2 && socket.isPaused) socket.resume();
      }
      if (done) return;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  })();
}

export const materializationRoutes: FastifyPluginAsyncTypebox<{
  ctx: PortalContext;
  materializer: Materializer;
}> = async (app, { materializer }) => {
  const path = "/projects/:project/experiments/:experiment/realizations/:realization/materialization";

  app.post(
    path,
    {
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["materializations"],
        summary: "Materialize an accepted realization (at most one materialization per realization)",
        params: Params,
        response: { 202: Record_, ...S.errors },
      },
    },
    async (req, reply) => {
      const { project, experiment, realization } = req.params;
      const m = await materializer.create(project, experiment, realization, req.principal!.user.name);
      return reply.code(202).send(m);
    },
  );

  app.get(
    path,
    {
      config: { access: { object: "realization", action: "read" } },
      schema: {
        tags: ["materializations"],
        summary: "Materialization status: per facility (errors, retries, reachability), per node and per link",
        params: Params,
        response: { 200: Status, ...S.errors },
      },
    },
    async (req) => {
      const { project, experiment, realization } = req.params;
      return materializer.status(project, experiment, realization);
    },
  );

  app.post(
    `${path}/nodes/:node/power`,
    {
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["materializations"],
        summary: "Power a materialized node (start, stop, reboot soft or hard, cycle) or reimage it; answers when done",
        params: NodeParams,
        body: PowerBody,
        response: { 200: PowerResult, ...S.errors },
      },
    },
    async (req) => {
      const { project, experiment, realization, node } = req.params;
      const b = req.body;
      const action = b.action === "reboot" ? (b.hard ? "cycle" : "soft-cycle") : POWER[b.action];
      return materializer.power(project, experiment, realization, node, action);
    },
  );

  app.post(
    `${path}/links/:link/emulation`,
    {
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["materializations"],
        summary: "Change an emulated link's latencyNs, lossFraction (0..1) or capacityBps at runtime",
        params: LinkParams,
        body: EmulationBody,
        response: { 200: EmulationResult, ...S.errors },
      },
    },
    async (req) => {
      const { project, experiment, realization, link } = req.params;
      const { toward, ...b } = req.body;
      const r = await materializer.emulation(project, experiment, realization, link, xirEmulationValues(b), toward);
      return { ...r, emulation: apiEmulation(r.emulation) };
    },
  );

  app.post(
    `${path}/nodes/:node/exec`,
    {
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["materializations"],
        summary: "Run a command in a node; output streams as NDJSON: {stdout}|{stderr} lines, then {exit}",
        params: NodeParams,
        body: ExecBody,
        response: { ...S.errors },
      },
    },
    async (req, reply) => {
      const { project, experiment, realization, node } = req.params;
      const ac = new AbortController();
      // The caller went away: stop the command.
      reply.raw.on("close", () => {
        if (!reply.raw.writableFinished) ac.abort();
      });
      const out = await materializer.exec(project, experiment, realization, node, req.body.argv, {
        signal: ac.signal,
        timeoutMs: req.body.timeoutSec ? Math.round(req.body.timeoutSec * 1000) : 0,
      });
      // One decoder per stream, so a character split across chunks stays whole.
      const stdout = new TextDecoder();
      const stderr = new TextDecoder();
      async function* lines() {
        try {
          for await (const c of out) {
            if ("stdout" in c) yield `${JSON.stringify({ stdout: stdout.decode(c.stdout, { stream: true }) })}\n`;
            else if ("stderr" in c) yield `${JSON.stringify({ stderr: stderr.decode(c.stderr, { stream: true }) })}\n`;
            else yield `${JSON.stringify({ exit: c.exit })}\n`;
          }
        } catch (err) {
          if (!ac.signal.aborted) yield `${JSON.stringify({ error: (err as Error).message })}\n`;
        }
      }
      // A stream body: the typed reply only knows the error schema for this route.
      return reply.type("application/x-ndjson").send(Readable.from(lines()) as never);
    },
  );

  await app.register(websocket, { options: { maxPayload: 1 << 20 } });
  // A refused upgrade (not signed in, not allowed, bad query) answers over the
  // raw socket, which nothing closes after; close it so it does not outlive the answer.
  app.addHook("onResponse", async (req, reply) => {
    if (reply.statusCode >= 400 && req.headers.upgrade?.toLowerCase() === "websocket") req.raw.socket.destroy();
  });
  app.get(
    `${path}/nodes/:node/shell`,
    {
      websocket: true,
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["materializations"],
        summary:
          "An interactive shell in a node (or, with argv, a command with its stdin) over a WebSocket: binary frames stdin/stdout, JSON text frames {resize}, {eof}, {stderr}, {exit}, {error}",
        params: NodeParams,
        querystring: ShellQuery,
      },
    },
    (socket, req) => {
      const { project, experiment, realization, node } = req.params;
      const q = req.query;
      const size = q.rows && q.cols ? { rows: Number(q.rows), cols: Number(q.cols) } : undefined;
      const ac = new AbortController();
      const input = socketInput(socket, ac);
      const send = (m: object) => socket.readyState === socket.OPEN && socket.send(JSON.stringify(m));
      const stderr = new TextDecoder();
      (async () => {
        try {
          const out = await materializer.shell(
            project,
            experiment,
            realization,
            node,
            {
              tty: q.tty === "1" || q.tty === "true",
              size,
              ...(q.argv !== undefined ? { argv: typeof q.argv === "string" ? [q.argv] : q.argv } : {}),
              ...(q.timeoutSec ? { timeoutMs: Math.round(Number(q.timeoutSec) * 1000) } : {}),
              signal: ac.signal,
            },
            input,
          );
          for await (const c of out) {
            if ("stdout" in c) {
              if (socket.readyState === socket.OPEN) socket.send(c.stdout);
            } else if ("stderr" in c) send({ stderr: stderr.decode(c.stderr, { stream: true }) });
            else send({ exit: c.exit });
          }
          socket.close(1000);
        } catch (err) {
          if (!ac.signal.aborted) send({ error: (err as Error).message });
          socket.close(1011);
        } finally {
          ac.abort();
        }
      })();
    },
  );

  app.delete(
    path,
    {
      config: { access: { object: "realization", action: "update" } },
      schema: {
        tags: ["materializations"],
        summary: "Dematerialize; always completes, in the background",
        params: Params,
        response: { 202: Record_, ...S.errors },
      },
    },
    async (req, reply) => {
      const { project, experiment, realization } = req.params;
      return reply.code(202).send(await materializer.dematerialize(project, experiment, realization));
    },
  );
};

/**
 * The plugin in the portal's `plugins` form: builds its Materializer on the
 * portal's store, resumes undelivered work, and stops its timers on close.
 *
 *   startPortal({ ..., plugins: [materializationPlugin({ connect: credentialsConnector(dir) })] })
 */
export function materializationPlugin(
  opts: Omit<MaterializerOptions, "store"> & {
    hostPollMs?: number;
    /** The portal's storage server: the facilities' storage keys are listed there (storage-keys.ts). */
    storage?: StorageKeys;
    storagePollMs?: number;
  },
): FastifyPluginAsync<{ ctx: PortalContext }> {
  return async (app, { ctx }) => {
    const materializer = new Materializer({
      mergeKeyOf: (user, uid) => mergeKey(ctx.workspace.homeDir(user), user, uid, opts.log),
      ...opts,
      store: ctx.store,
    });
    // The facilities' hosts, for the realizer to avoid drained and down ones (host-state.ts).
    const hosts = new HostWatch({
      store: ctx.store,
      connect: opts.connect,
      ...(opts.hostPollMs ? { intervalMs: opts.hostPollMs } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
    const storageKeys = opts.storage
      ? new StorageKeyWatch({
          store: ctx.store,
          connect: opts.connect,
          server: opts.storage,
          ...(opts.storagePollMs ? { intervalMs: opts.storagePollMs } : {}),
          ...(opts.log ? { log: opts.log } : {}),
        })
      : undefined;
    app.addHook("onClose", async () => {
      hosts.close();
      storageKeys?.close();
      materializer.close();
    });
    hosts.start();
    storageKeys?.start();
    // A lease that runs out reclaims the materialization first (leases.ts); one already going is left to finish.
    ctx.leases.onDematerialize(async (p, e, r) => {
      const m = await materializer.get(p, e, r);
      if (m !== undefined && m.state !== "dematerializing") await materializer.dematerialize(p, e, r);
    });
    // The operations view shows each facility's failed actions, as the facility reports them.
    ctx.facilityHealth = facilityHealthProbe(opts.connect);
    // Idle detection counts what the facilities see the nodes do (idle.ts).
    ctx.leases.onProbeActivity((mz) => materializer.activity(mz.project, mz.experiment, mz.realization));
    // XDCs attach to infranets through it (xdc/attach.ts).
    ctx.infranets = {
      attach: (p, e, r, peer, key) => materializer.attach(p, e, r, peer, key),
      detach: (p, e, r, peer) => materializer.detach(p, e, r, peer),
      live: async (p, e, r) => (await materializer.get(p, e, r))?.state === "materializing",
    };
    await app.register(materializationRoutes, { ctx, materializer });
    await materializer.resume();
  };
}
