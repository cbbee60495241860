/**
 * The emulation control endpoint (moactld's role): change a running link's
 * capacity, latency and loss over HTTP, in seconds, without re-materializing.
 * It listens on loopback by default; `mrg emu set` reaches it through the facility.
 *
 *   GET /emulation/<mzid>/<link>   -> {"ports":[{port,latency,loss,forwarded,dropped}]}
 *   PUT /emulation/<mzid>/<link>   body {"capacity"?: bps, "latency"?: ns, "loss"?: fraction}
 *
 * A PUT sets the link's values in every direction (directions set apart go);
 * one direction at a time is the facility's `NodeOps.emulation(..., {toward})`.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { LinuxDataPlane } from "./dataplane.ts";
import type { EmulationParams } from "./record.ts";

const FIELDS = ["capacity", "latency", "loss"] as const;

function parseParams(body: string): EmulationParams {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new Error('body: expected JSON like {"latency": 10000000, "loss": 0.01, "capacity": 10000000}');
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("body: expected a JSON object");
  const out: EmulationParams = {};
  for (const [k, x] of Object.entries(v)) {
    if (!(FIELDS as readonly string[]).includes(k))
      throw new Error(`body.${k}: unknown field; expected one of ${FIELDS.join(", ")}`);
    if (typeof x !== "number") throw new Error(`body.${k}: expected a number in base units (bps, ns, fraction)`);
    out[k as (typeof FIELDS)[number]] = x;
  }
  return out;
}

export async function startEmulationControl(
  dp: LinuxDataPlane,
  opts: { host?: string; port?: number } = {},
): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const m = /^\/emulation\/([^/]+)\/([^/]+)$/.exec(req.url ?? "");
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(`${JSON.stringify(body)}\n`);
    };
    if (!m) return reply(404, { error: "expected /emulation/<mzid>/<link>" });
    const mzid = decodeURIComponent(m[1] as string);
    const link = decodeURIComponent(m[2] as string);
    if (req.method === "GET") {
      dp.emulationStats(mzid, link).then(
        (ports) => reply(200, { ports }),
        (e: Error) => reply(404, { error: e.message }),
      );
      return;
    }
    if (req.method !== "PUT") return reply(405, { error: "use GET or PUT" });
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => {
      body += d;
      if (body.length > 4096) req.destroy();
    });
    req.on("end", () => {
      let p: EmulationParams;
      try {
        p = parseParams(body);
      } catch (e) {
        return reply(400, { error: (e as Error).message });
      }
      dp.setEmulation(mzid, link, p).then(
        () => reply(200, { ok: true, params: p }),
        (e: Error) => reply(400, { error: e.message }),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    server,
    url: `http://${a.address}:${a.port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
