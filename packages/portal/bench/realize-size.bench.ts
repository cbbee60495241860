/**
 * Realizing big experiments through the portal's Realizer on a sqlite store:
 * the engine, the reservation transaction (header, compressed chunks, epoch)
 * and the release, timed together. The facility is generated.
 *
 *   2000-nodes:  a 2,000-node experiment (50 LANs of 40) on a 2,500-node facility
 *   7000-nodes:  a 7,000-node experiment (175 LANs of 40) on a 10,000-node facility
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchCase, defineBench } from "@merge/bench";
import { generateFacility } from "@merge/facility-model";
import { openStore } from "@merge/store";
import { realizeEngine } from "../src/engine.ts";
import { keys } from "../src/objects.ts";
import { type AllocationHeader, Realizer } from "../src/realization.ts";
import { activeFacility, lansXir } from "../test/size.ts";

function sized(facilityNodes: number, lanCount: number) {
  return benchCase(async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "merge-portal-bench-size-"));
    const store = openStore({ backend: "sqlite", dir: dataDir });
    const model = generateFacility({ nodes: facilityNodes, name: "gen" });
    await store.put(keys.facility("gen"), JSON.stringify(activeFacility(model)));
    await store.put(keys.facilityEpoch(), "{}");
    await store.put(
      keys.revisionBody("p", "big", 1),
      JSON.stringify({ source: "", xir: lansXir("big", lanCount, 40, { backbone: false }) }),
    );
    const realizer = new Realizer(store, realizeEngine, 60_000, 0);
    await realizer.internet(); // prepare the facility untimed, as a running portal has
    return {
      run: async () => {
        const r = await realizer.realize({ project: "p", experiment: "big", name: "r", revision: 1, user: "u" });
        if (r.state === "failed") throw new Error(r.diagnostics.join("\n"));
        const header = JSON.parse((await store.get(keys.allocation("r.big.p")))!.value) as AllocationHeader;
        const recordBytes = (await store.get(keys.realization("p", "big", "r")))!.value.length;
        await realizer.release("p", "big", "r");
        return { header, recordBytes };
      },
      fields: ({ header, recordBytes }) => ({
        nodes: lanCount * 40,
        records: header.records,
        chunks: header.chunks,
        encoded_kb: Math.round(header.chars / 1024),
        realization_record_kb: Math.round(recordBytes / 1024),
      }),
      cleanup: async () => {
        await store.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  });
}

export default defineBench({
  name: "realize-size",
  cases: {
    "2000-nodes": sized(2500, 50),
    "7000-nodes": sized(10_000, 175),
  },
});
