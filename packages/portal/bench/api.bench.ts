/**
 * Portal API throughput on loopback with autocannon, against a portal child
 * process on a fresh sqlite data directory (so the load generator does not
 * share the server's event loop).
 *
 *   get-list: GET /projects/<p>/experiments (20 experiments), 10 s
 *   push:     1 MB XIR model pushes (compiled and stored as revisions), 10 s
 */
import { benchCase, defineBench } from "@merge/bench";
import { linkOf } from "@merge/xir";
import autocannon from "autocannon";
import { startServer } from "./server.ts";

/** A chain topology whose XIR is about `bytes` long. */
function xirOfSize(name: string, bytes: number): string {
  const node = (i: number) => ({
    name: `node${i}`,
    constraints: [{ prop: "memory.capacity", op: ">=", value: 1073741824 }],
    sockets: [
      { index: 0, addrs: [], constraints: [] },
      { index: 1, addrs: [], constraints: [] },
    ],
    properties: { group: ["servers"] },
  });
  const per = JSON.stringify(node(0)).length + 120;
  const n = Math.max(2, Math.round(bytes / per));
  const nodes = Array.from({ length: n }, (_, i) => node(i));
  const links = Array.from({ length: n - 1 }, (_, i) =>
    linkOf(`link${i}`, [
      [`node${i}`, 1],
      [`node${i + 1}`, 0],
    ]),
  );
  return JSON.stringify({ xir: "1.0", name, parameters: {}, nodes, links });
}

function load(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

const figures = (r: autocannon.Result) => ({
  ops_per_s: Math.round(r.requests.average),
  p99_ms: r.latency.p99,
  p50_ms: r.latency.p50,
  requests: r.requests.total,
  non_2xx: r.non2xx,
  errors: r.errors,
});

export default defineBench({
  name: "api",
  cases: {
    "get-list": benchCase(async () => {
      const s = await startServer();
      for (let i = 0; i < 20; i++) await s.client.createExperiment("bench", { name: `exp${i}`, visibility: "public" });
      return {
        run: () =>
          load({
            url: `${s.url}/projects/bench/experiments`,
            connections: 8,
            duration: 10,
            headers: { authorization: `Bearer ${s.token}` },
          }),
        fields: figures,
        cleanup: () => s.stop(),
        targets: { min: { ops_per_s: 2000 }, max: { p99_ms: 25 } },
      };
    }),
    push: benchCase(async () => {
      const s = await startServer();
      await s.client.createExperiment("bench", { name: "big" });
      const body = JSON.stringify({ source: xirOfSize("big", 1024 * 1024), lang: "xir" });
      return {
        run: () =>
          load({
            url: `${s.url}/projects/bench/experiments/big/revisions`,
            method: "POST",
            connections: 1,
            duration: 10,
            headers: { authorization: `Bearer ${s.token}`, "content-type": "application/json" },
            body,
          }),
        fields: (r) => ({ ...figures(r), body_bytes: body.length }),
        cleanup: () => s.stop(),
      };
    }),
  },
});
