/**
 * The client side of mutual TLS, shared by every caller of a facility service
 * (the portal, the commander calling drivers, drivers calling the registry):
 * PEM files read with errors that say how to make them, and a gRPC client
 * whose server certificate must come from the same CA.
 */
import { readFileSync } from "node:fs";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { MergeError } from "@merge/xir/errors";

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** PEM contents for Node's TLS options. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** A certificate or key file that cannot be read. */
export class TlsFilesError extends MergeError<"tls"> {
  constructor(message: string, options?: ErrorOptions) {
    super("tls", "files", message, options);
  }
}

export function loadTls(files: TlsFiles): TlsMaterial {
  const read = (what: string, p: string) => {
    try {
      return readFileSync(p);
    } catch (err) {
      throw new TlsFilesError(
        `cannot read the ${what} '${p}': ${(err as Error).message} (make them with 'cog certs make')`,
      );
    }
  };
  return {
    ca: read("CA certificate", files.ca),
    cert: read("certificate", files.cert),
    key: read("private key", files.key),
  };
}

/** A client over mutual TLS; the server's certificate must come from the same CA. */
export function tlsClient<S extends DescService>(service: S, url: string, tls: TlsMaterial): Client<S> {
  const transport = createGrpcTransport({
    baseUrl: url,
    nodeOptions: { ca: tls.ca, cert: tls.cert, key: tls.key },
  });
  return createClient(service, transport);
}
