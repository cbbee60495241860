/**
 * The XDC host's API for the portal: JSON over HTTPS with mutual TLS. Only a
 * client certificate of the host's CA with the `portal` role gets an answer.
 *
 *   GET    /xdcs                 every XDC of this host
 *   GET    /xdcs/:id             one (404 if not here)
 *   PUT    /xdcs/:id             XdcSpec: create, or start again with these accounts
 *   PUT    /xdcs/:id/accounts    {accounts, gid}: members or keys changed
 *   DELETE /xdcs/:id             remove everything of it
 *   GET    /xdcs/:id/wireguard   {publicKey}: the XDC's WireGuard public key (its private key stays here)
 *   PUT    /xdcs/:id/attachment  XdcAttachment: tunnel to a materialization's infranet
 *   DELETE /xdcs/:id/attachment  remove the tunnel
 */
import { createServer, type Server } from "node:https";
import type { TLSSocket } from "node:tls";
import type { TlsMaterial } from "@merge/proto";
import { type XdcHost, XdcInputError } from "./host.ts";
import type { XdcAccount, XdcAttachment, XdcSpec } from "./wire.ts";

const MAX_BODY = 1024 * 1024;

export interface XdcService {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function serveXdcHost(
  host: XdcHost,
  tls: TlsMaterial,
  opts: { host?: string; port?: number } = {},
): Promise<XdcService> {
  const server = createServer(
    { ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      const ou = peer?.subject?.OU;
      if ((Array.isArray(ou) ? ou[0] : ou) !== "portal")
        return send(403, { message: "only the portal may call the XDC host" });
      let size = 0;
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy();
        else chunks.push(c);
      });
      req.on("end", () => {
        void handle(host, req.method ?? "GET", req.url ?? "/", Buffer.concat(chunks).toString("utf8")).then(
          ([status, body]) => send(status, body),
          (e: unknown) =>
            e instanceof XdcInputError
              ? send(400, { message: e.message })
              : send(500, { message: (e as Error).message }),
        );
      });
    },
  );
  await new Promise<void>((res, rej) => {
    server.once("error", rej);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => res());
  });
  const addr = server.address() as { port: number };
  return {
    url: `https://${opts.host ?? "127.0.0.1"}:${addr.port}`,
    server,
    close: () =>
      new Promise<void>((res) => {
        server.close(() => res());
        server.closeAllConnections();
      }),
  };
}

async function handle(host: XdcHost, method: string, url: string, text: string): Promise<[number, unknown]> {
  const parts = url.split("?")[0]?.split("/").filter(Boolean).map(decodeURIComponent) ?? [];
  const body = () => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new XdcInputError("the request body is not JSON");
    }
  };
  if (parts[0] !== "xdcs") return [404, { message: `no such route: ${method} ${url}` }];
  const id = parts[1];
  if (id === undefined) return method === "GET" ? [200, host.list()] : [405, { message: "GET /xdcs only" }];
  if (parts[2] === "accounts" && method === "PUT") {
    const b = body() as { accounts: XdcAccount[]; gid: number };
    return [200, await host.setAccounts(id, b.accounts, b.gid)];
  }
  if (parts[2] === "wireguard" && parts.length === 3 && method === "GET")
    return [200, { publicKey: await host.publicKey(id) }];
  if (parts[2] === "attachment" && parts.length === 3) {
    if (method === "PUT") return [200, await host.attach(id, body() as XdcAttachment)];
    if (method === "DELETE") return [200, await host.detach(id)];
  }
  if (parts.length !== 2) return [404, { message: `no such route: ${method} ${url}` }];
  if (method === "GET") {
    const s = host.status(id);
    return s === undefined ? [404, { message: `no XDC ${id} on this host` }] : [200, s];
  }
  if (method === "PUT") {
    const spec = body() as XdcSpec;
    if (spec.id !== id) throw new XdcInputError(`id: the body names ${String(spec.id)}, the path ${id}`);
    return [200, await host.create(spec)];
  }
  if (method === "DELETE") return [200, { deleted: await host.delete(id) }];
  return [405, { message: `${method} is not a method of /xdcs/:id` }];
}
