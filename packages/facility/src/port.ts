/** Loopback ports for the processes a stack starts (facility, registry, portal) and for tests. */
import { type AddressInfo, createServer, type Server } from "node:net";

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

/**
 * Binds `server` (HTTP, HTTP/2 or TLS: all are net servers) to `host` and `port` (0: the kernel's
 * choice); resolves with the port bound and the authority a URL names it by (`[::1]:port` for IPv6).
 */
export async function listenOn(server: Server, host: string, port = 0): Promise<{ port: number; authority: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return { port: bound, authority: `${host.includes(":") ? `[${host}]` : host}:${bound}` };
}
