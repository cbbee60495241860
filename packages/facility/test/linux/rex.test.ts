import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fragmentsFor, synthetic } from "@merge/materialize";
import { openMemoryStore } from "@merge/store";
import { Driver } from "../../src/driver.ts";
import { LinuxBackend } from "../../src/linux/backend.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { Rex } from "../../src/rex.ts";
import { statusIs } from "../fixture.ts";
import { isClean, leftovers, rtPing, skip, suiteHarness } from "./fixture.ts";

/** The whole facility path on the real data plane: fragments → driver → task DAG → rex → linux backend. */
describe("rex on the linux backend", { skip }, () => {
  const h = suiteHarness();

  test("materialize 40 nodes (4 LANs, emulated WAN links) through rex, use it, dematerialize to nothing", async () => {
    const mzid = h.mzid("rex40");
    const s = synthetic(40, { mzid, lanSize: 10 });
    for (const n of s.experiment.nodes) delete n.image; // the facility default: busybox (Debian is not built in tests)
    const store = openMemoryStore();
    const driver = new Driver(store);
    const rex = new Rex({ store, backend: LinuxBackend.over(h.dp), leaseTtl: 5, concurrency: 32 });
    await rex.start();
    try {
      await driver.materialize(mzid, fragmentsFor(s.realization, s.experiment, s.facility));
      const st = await statusIs(driver, mzid, "active", 90_000);
      assert.equal(st.summary.complete, st.summary.actions);
      // n1..n9 share lan0 (10.0.0.0/24); n11 is on lan1 (10.0.1.2).
      assert.equal((await h.dp.run(mzid, "n1", ["ping", "-c", "1", "-W", "2", "10.0.0.3"])).code, 0);
      // dnsmasq rereads its hosts on SIGHUP, asynchronously: give a loaded machine a few seconds.
      let resolved = false;
      for (let i = 0; i < 10 && !resolved; i++) {
        resolved = (await h.dp.run(mzid, "n5", ["ping", "-c", "1", "-W", "2", "n6"])).code === 0;
        if (!resolved) await new Promise((r) => setTimeout(r, 500));
      }
      assert.ok(resolved, "names resolve");
      assert.notEqual(
        (await h.dp.run(mzid, "n1", ["ping", "-c", "1", "-W", "1", "10.0.1.2"])).code,
        0,
        "LANs are separate",
      );
      // wan0 (n0 ↔ n10) is emulated at 10 ms per direction: its endpoints have no addresses in this
      // synthetic model, so give them some and measure.
      await h.dp.run(mzid, "n0", ["ip", "addr", "add", "192.168.9.1/24", "dev", "eth2"]);
      await h.dp.run(mzid, "n10", ["ip", "addr", "add", "192.168.9.2/24", "dev", "eth3"]);
      await h.dp.run(mzid, "n0", ["ip", "link", "set", "eth2", "up"]);
      await h.dp.run(mzid, "n10", ["ip", "link", "set", "eth3", "up"]);
      await h.dp.run(mzid, "n0", ["ping", "-c", "1", "-W", "2", "192.168.9.2"]);
      const r = rtPing(h.dp.netnsPath(mzid, "n0"), "192.168.9.2", 5);
      const rtt = Number(/min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(r.stdout)?.[1]);
      assert.ok(Math.abs(rtt - 20) <= 3, r.stdout);

      await driver.dematerialize(mzid);
      await statusIs(driver, mzid, "dematerialized", 60_000);
      const left = await leftovers(prefixOf(mzid), h.dataDir);
      assert.ok(isClean(left), JSON.stringify(left));
    } finally {
      await rex.stop();
      await store.close();
    }
  });
});
