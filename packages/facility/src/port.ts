/** Loopback ports for the processes a stack starts (facility, registry, portal) and for tests. */
import { type AddressInfo, createServer } from "node:net";

/** A loopback port nothing listened on a moment ago: the kernel's choice for port 0, released again. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => res(port));
    });
  });
}
