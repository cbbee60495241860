/**
 * gRPC over HTTP/2 with mutual TLS, the one way facility components talk: a
 * server refuses any client without a certificate from the facility CA (in the
 * TLS handshake) and any client whose certificate has the wrong role (per call).
 */
import http2 from "node:http2";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextKey,
  createContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { TlsMaterial } from "@merge/proto";
import { type CertRole, peerRole } from "./certs.ts";
import { listenOn } from "./port.ts";

const roleKey = createContextKey<string | undefined>(undefined, { description: "peer certificate role" });
/** The verified peer certificate's common name (a host agent's is its host's name). */
export const peerNameKey = createContextKey<string | undefined>(undefined, { description: "peer certificate CN" });

export interface TlsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function serveTls(opts: {
  tls: TlsMaterial;
  routes: (router: ConnectRouter) => void;
  /** Roles (certificate OU) allowed to call. */
  allow: CertRole[];
  host?: string;
  port?: number;
  /** More interceptors, after the role check (metrics). */
  interceptors?: Interceptor[];
}): Promise<TlsServer> {
  const allow: Interceptor = (next) => async (req) => {
    const role = req.contextValues.get(roleKey);
    if (!role || !(opts.allow as string[]).includes(role)) {
      throw new ConnectError(
        `a certificate with role '${role ?? "none"}' may not call ${req.service.typeName}; allowed: ${opts.allow.join(", ")}`,
        Code.PermissionDenied,
      );
    }
    return next(req);
  };
  const handler = connectNodeAdapter({
    routes: opts.routes,
    interceptors: [allow, ...(opts.interceptors ?? [])],
    contextValues: (req) => {
      const socket = req.socket as TLSSocket;
      const cert = socket.authorized ? socket.getPeerCertificate() : undefined;
      const cn = cert?.subject?.CN;
      return createContextValues()
        .set(roleKey, peerRole(cert?.subject))
        .set(peerNameKey, Array.isArray(cn) ? cn[0] : cn);
    },
  });
  const server = http2.createSecureServer(
    {
      requestCert: true,
      rejectUnauthorized: true,
      ca: opts.tls.ca,
      cert: opts.tls.cert,
      key: opts.tls.key,
      minVersion: "TLSv1.2",
    },
    handler,
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  // The connections themselves too: a session's destroy still waits for its socket's unsent data to
  // drain, which a peer cut off (its host gone, no reset) never lets happen; so does a TLS handshake.
  const sockets = new Set<Socket>();
  server.on("connection", (c: Socket) => {
    sockets.add(c);
    c.on("close", () => sockets.delete(c));
  });
  const { port, authority } = await listenOn(server, opts.host ?? "127.0.0.1", opts.port);
  return {
    url: `https://${authority}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.close();
        server.close(() => resolve());
        setTimeout(() => {
          for (const s of sessions) s.destroy();
          for (const c of sockets) c.destroy();
        }, 1000).unref();
      }),
  };
}

export { tlsClient } from "@merge/proto";
