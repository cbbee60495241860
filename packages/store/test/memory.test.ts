import { openMemoryStore, type Store } from "../src/index.ts";
import { conformance } from "./conformance.ts";

const store = openMemoryStore();
/** A second handle on the same memory store, as another client would have; closing it leaves the store open. */
const handle = (s: Store): Store =>
  new Proxy(s, {
    get(target, prop) {
      if (prop === "close") return async () => {};
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
let opened = 0;
conformance("memory", async () => (opened++ === 0 ? store : handle(store)), { leaseSlackMs: 500 });
