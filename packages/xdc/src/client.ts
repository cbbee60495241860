/** The portal's side of the XDC host API (service.ts): mutual TLS, JSON. */
import { request } from "node:https";
import type { TlsMaterial } from "@merge/proto";
import { MergeError } from "@merge/xir/errors";
import type { XdcAccount, XdcAttachment, XdcSpec, XdcStatus } from "./wire.ts";

/** The XDC host's error answer, relayed with the status it gave. */
export class XdcHostError extends MergeError<"xdc"> {
  constructor(status: number, message: string) {
    super("xdc", "host", message, { status });
  }
}

export class XdcHostClient {
  constructor(
    readonly url: string,
    private readonly tls: TlsMaterial,
  ) {}

  list(): Promise<XdcStatus[]> {
    return this.call("GET", "/xdcs");
  }
  async status(id: string): Promise<XdcStatus | undefined> {
    try {
      return await this.call<XdcStatus>("GET", `/xdcs/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e instanceof XdcHostError && e.status === 404) return undefined;
      throw e;
    }
  }
  create(spec: XdcSpec): Promise<XdcStatus> {
    return this.call("PUT", `/xdcs/${encodeURIComponent(spec.id)}`, spec);
  }
  setAccounts(id: string, accounts: XdcAccount[], gid: number): Promise<XdcStatus> {
    return this.call("PUT", `/xdcs/${encodeURIComponent(id)}/accounts`, { accounts, gid });
  }
  async publicKey(id: string): Promise<string> {
    return (await this.call<{ publicKey: string }>("GET", `/xdcs/${encodeURIComponent(id)}/wireguard`)).publicKey;
  }
  attach(id: string, a: XdcAttachment): Promise<XdcStatus> {
    return this.call("PUT", `/xdcs/${encodeURIComponent(id)}/attachment`, a);
  }
  detach(id: string): Promise<XdcStatus> {
    return this.call("DELETE", `/xdcs/${encodeURIComponent(id)}/attachment`);
  }
  async delete(id: string): Promise<boolean> {
    return (await this.call<{ deleted: boolean }>("DELETE", `/xdcs/${encodeURIComponent(id)}`)).deleted;
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const u = new URL(path, this.url);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        u,
        {
          method,
          ca: this.tls.ca,
          cert: this.tls.cert,
          key: this.tls.key,
          headers: { "content-type": "application/json" },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = { message: text };
            }
            if ((res.statusCode ?? 500) >= 400)
              reject(new XdcHostError(res.statusCode ?? 500, (parsed as { message?: string }).message ?? text));
            else resolve(parsed as T);
          });
        },
      );
      req.on("error", (e) =>
        reject(new XdcHostError(503, `the XDC host at ${this.url} does not answer: ${e.message}`)),
      );
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }
}
