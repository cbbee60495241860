import { after, before } from "node:test";
import { openEtcdStore } from "../src/index.ts";
import { type EtcdServer, startEtcd } from "../src/testing/etcd.ts";
import { conformance } from "./conformance.ts";

let etcd: EtcdServer | undefined;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd?.stop());

// etcd checks lease expiry every 500 ms.
conformance("etcd", async () => openEtcdStore({ endpoints: etcd!.endpoints }), { leaseSlackMs: 1500 });
