/**
 * How the portal reaches a facility commander: gRPC over HTTP/2 with mutual TLS,
 * using the credentials the facility's operator issued to this portal
 * (`cog certs make --role portal`), kept per facility in a directory:
 *
 *   <dir>/<facility>/ca.pem          the facility CA (verifies the commander)
 *   <dir>/<facility>/portal.pem      this portal's client certificate
 *   <dir>/<facility>/portal-key.pem  its key (0600)
 */
import { join } from "node:path";
import * as pb from "@merge/proto";
import type { FacilityRecord } from "../objects.ts";
import type { Connect, FacilityClient } from "./materializer.ts";

export function credentialsConnector(dir: string): Connect {
  const cache = new Map<string, FacilityClient>();
  return (f: Pick<FacilityRecord, "name" | "endpoint">) => {
    const id = `${f.name} ${f.endpoint}`;
    let c = cache.get(id);
    if (!c) {
      const d = join(dir, f.name);
      const tls = pb.loadTls({ ca: join(d, "ca.pem"), cert: join(d, "portal.pem"), key: join(d, "portal-key.pem") });
      c = pb.tlsClient(pb.FacilityService, f.endpoint, tls);
      cache.set(id, c);
    }
    return c;
  };
}
