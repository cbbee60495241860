/**
 * The facility's certificates: a CA, and from it one certificate per role.
 * The role is the certificate's OU, which the commander and drivers check:
 *
 *   commander: serves portals and drivers, and calls drivers (server + client)
 *   portal:    calls the commander's facility API (client)
 *   driver:    registers with the commander and serves it (server + client)
 *   host:      a host agent: registers with the facility and serves rex (server +
 *              client); one certificate per host, its CN the host's name, issued
 *              into the host's own directory (`makeHostCert`)
 *
 * Made with the `openssl` CLI (Node cannot issue X.509 certificates). Every key
 * is generated inside the target directory and never leaves it; files are 0600,
 * the directory 0700.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import type { TlsFiles } from "@merge/proto";
import { MergeError } from "@merge/xir/errors";

export type CertRole = "commander" | "portal" | "driver" | "host";

export class CertError extends MergeError<"facility"> {
  constructor(message: string, options?: ErrorOptions) {
    super("facility", "certificate", message, options);
  }
}

export function openssl(): string {
  for (const p of ["/usr/bin/openssl", "/usr/local/bin/openssl"]) if (existsSync(p)) return p;
  throw new CertError("openssl is not installed; install the 'openssl' package to make certificates");
}

export function certFiles(dir: string, role: CertRole): TlsFiles {
  return { ca: join(dir, "ca.pem"), cert: join(dir, `${role}.pem`), key: join(dir, `${role}-key.pem`) };
}

export interface MakeCertsOptions {
  /** Names and addresses the commander and drivers are reached at (SANs); loopback is always included. */
  hosts?: string[];
  /** Roles to issue (default all). */
  roles?: CertRole[];
  /** Validity, days (default 825). */
  days?: number;
  /** Replace existing files. */
  force?: boolean;
  /** Organization in the subjects (the facility name). */
  facility?: string;
}

const EXT: Record<CertRole, string> = {
  commander: "serverAuth,clientAuth",
  portal: "clientAuth",
  driver: "serverAuth,clientAuth",
  host: "serverAuth,clientAuth",
};

/** Runs `openssl` (at `bin`) in `dir`, without the system's configuration; a failure is a CertError with its stderr. */
function opensslIn(bin: string, dir: string): (args: string[]) => void {
  return (args) => {
    try {
      execFileSync(bin, args, {
        cwd: dir,
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, OPENSSL_CONF: "/dev/null" },
      });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      throw new CertError(`openssl ${args[0]} failed: ${stderr || (err as Error).message}`);
    }
  };
}

/** Make a CA (unless one exists) and a certificate per role. Returns the files written. */
export function makeCerts(dir: string, opts: MakeCertsOptions = {}): string[] {
  const bin = openssl();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const days = String(opts.days ?? 825);
  const org = (opts.facility ?? "merge-facility").replace(/[/=,+]/g, "-");
  const written: string[] = [];
  const run = opensslIn(bin, dir);
  const secure = (name: string) => {
    chmodSync(join(dir, name), 0o600);
    written.push(join(dir, name));
  };
  const caKey = "ca-key.pem";
  const caCert = "ca.pem";
  if (!existsSync(join(dir, caCert)) || opts.force) {
    run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", caKey]);
    run([
      "req",
      "-x509",
      "-new",
      "-key",
      caKey,
      "-subj",
      `/O=${org}/CN=${org} CA`,
      "-days",
      days,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-out",
      caCert,
    ]);
    secure(caKey);
    secure(caCert);
  }
  const hosts = ["localhost", "127.0.0.1", "::1", ...(opts.hosts ?? [])];
  const san = [...new Set(hosts)].map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
  for (const role of opts.roles ?? (["commander", "portal", "driver"] as CertRole[])) {
    const f = certFiles(dir, role);
    if (existsSync(f.cert) && !opts.force) continue;
    const keyName = `${role}-key.pem`;
    const csr = `${role}.csr`;
    const ext = `${role}.ext`;
    run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyName]);
    run(["req", "-new", "-key", keyName, "-subj", `/O=${org}/OU=${role}/CN=${role}`, "-out", csr]);
    writeFileSync(
      join(dir, ext),
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        `extendedKeyUsage=${EXT[role]}`,
        ...(role === "portal" ? [] : [`subjectAltName=${san}`]),
      ].join("\n"),
      { mode: 0o600 },
    );
    run([
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      caCert,
      "-CAkey",
      caKey,
      "-CAcreateserial",
      "-days",
      days,
      "-extfile",
      ext,
      "-out",
      `${role}.pem`,
    ]);
    rmSync(join(dir, csr));
    rmSync(join(dir, ext));
    secure(keyName);
    secure(`${role}.pem`);
  }
  if (existsSync(join(dir, "ca.srl"))) chmodSync(join(dir, "ca.srl"), 0o600);
  return written;
}

/**
 * A host agent's certificate: key and request made in `dir` (the host's own
 * directory, where the key stays), signed by the facility CA in `caDir`; its
 * CN is the host's name and its SANs the addresses the agent is reached at.
 * `dir` gets the CA certificate too (never its key). Returns the files written.
 */
export function makeHostCert(
  caDir: string,
  dir: string,
  name: string,
  opts: { addresses?: string[]; days?: number; force?: boolean } = {},
): string[] {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name))
    throw new CertError(`host name '${name}' is not valid: letters, digits, '_', '.', '-' (at most 63)`);
  const caCert = join(caDir, "ca.pem");
  const caKey = join(caDir, "ca-key.pem");
  if (!existsSync(caCert) || !existsSync(caKey))
    throw new CertError(
      `${caDir} has no facility CA (ca.pem, ca-key.pem); make one with 'cog certs make --dir ${caDir}'`,
    );
  const bin = openssl();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const f = certFiles(dir, "host");
  if (existsSync(f.cert) && !opts.force) return [];
  const run = opensslIn(bin, dir);
  const hosts = ["localhost", "127.0.0.1", "::1", ...(opts.addresses ?? [])];
  const san = [...new Set(hosts)].map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
  run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "host-key.pem"]);
  chmodSync(f.key, 0o600);
  run(["req", "-new", "-key", "host-key.pem", "-subj", `/OU=host/CN=${name}`, "-out", "host.csr"]);
  writeFileSync(
    join(dir, "host.ext"),
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${EXT.host}`,
      `subjectAltName=${san}`,
    ].join("\n"),
    { mode: 0o600 },
  );
  const serial = join(dir, "host.srl");
  run([
    "x509",
    "-req",
    "-in",
    "host.csr",
    "-CA",
    caCert,
    "-CAkey",
    caKey,
    "-CAserial",
    serial,
    "-CAcreateserial",
    "-days",
    String(opts.days ?? 825),
    "-extfile",
    "host.ext",
    "-out",
    "host.pem",
  ]);
  for (const x of ["host.csr", "host.ext", "host.srl"]) rmSync(join(dir, x), { force: true });
  copyFileSync(caCert, f.ca);
  chmodSync(f.cert, 0o600);
  chmodSync(f.ca, 0o600);
  return [f.key, f.cert, f.ca];
}

/** The role (OU) of a verified peer certificate's subject. */
export function peerRole(subject: { OU?: string | string[] } | undefined): string | undefined {
  const ou = subject?.OU;
  return Array.isArray(ou) ? ou[0] : ou;
}

export { loadTls, type TlsFiles, type TlsMaterial } from "@merge/proto";
