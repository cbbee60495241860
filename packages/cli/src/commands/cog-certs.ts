// cog certs make: the facility CA and the commander, portal and driver
// certificates (mutual TLS between portal, commander and drivers).
import { CertError, type CertRole, makeCerts, makeHostCert } from "@merge/facility";
import type { Command } from "commander";

export function register(program: Command): void {
  const certs = program.command("certs").description("facility TLS certificates");
  registerHostCert(certs);
  certs
    .command("make")
    .description(
      "make a CA (unless the directory has one) and commander/portal/driver certificates; keys stay in --dir",
    )
    .option("--dir <dir>", "directory for keys and certificates (made 0700; files 0600)", "/etc/merge/certs")
    .option("--host <name...>", "extra names/addresses the commander and drivers are reached at")
    .option("--role <role...>", "issue only these roles: commander, portal, driver")
    .option("--facility <name>", "facility name for the certificate subjects")
    .option("--days <n>", "validity in days", "825")
    .option("--force", "replace existing keys and certificates")
    .option("--json", "print the files written as JSON")
    .action(
      (opts: {
        dir: string;
        host?: string[];
        role?: string[];
        facility?: string;
        days: string;
        force?: boolean;
        json?: boolean;
      }) => {
        const roles = opts.role ?? ["commander", "portal", "driver"];
        const bad = roles.filter((r) => !["commander", "portal", "driver"].includes(r));
        const days = Number(opts.days);
        if (bad.length) return fail(`--role ${bad.join(", ")}: roles are commander, portal, driver`);
        if (!Number.isInteger(days) || days <= 0) return fail(`--days '${opts.days}' is not a positive whole number`);
        try {
          const files = makeCerts(opts.dir, {
            hosts: opts.host,
            roles: roles as CertRole[],
            facility: opts.facility,
            days,
            force: opts.force,
          });
          if (opts.json) console.log(JSON.stringify({ dir: opts.dir, files }, null, 2));
          else if (!files.length) console.log(`${opts.dir}: certificates exist already (--force replaces them)`);
          else for (const f of files) console.log(`wrote ${f}`);
        } catch (err) {
          if (err instanceof CertError) return fail(err.message, 1);
          throw err;
        }
      },
    );
}

/** cog certs host: a host agent's certificate, its key made in the host's own directory. */
export function registerHostCert(certs: Command): void {
  certs
    .command("host <name>")
    .description("a host agent's certificate (role host, CN = the host's name), signed by the facility CA in --ca")
    .requiredOption("--ca <dir>", "the facility's certificate directory (from 'cog certs make')")
    .requiredOption("--dir <dir>", "the host's own directory: its key is made there and stays there")
    .option("--address <addr...>", "addresses the agent is reached at (its underlay address)")
    .option("--force", "replace an existing certificate")
    .action((name: string, opts: { ca: string; dir: string; address?: string[]; force?: boolean }) => {
      try {
        const files = makeHostCert(opts.ca, opts.dir, name, { addresses: opts.address, force: opts.force });
        if (!files.length) console.log(`${opts.dir}: a host certificate exists already (--force replaces it)`);
        else for (const f of files) console.log(`wrote ${f}`);
      } catch (err) {
        if (err instanceof CertError) return fail(err.message, 1);
        throw err;
      }
    });
}

/** Exit status 2 for a wrong command line, 1 when openssl could not make the certificates. */
function fail(message: string, code: 1 | 2 = 2): void {
  console.error(`cog certs make: ${message}`);
  process.exitCode = code;
}
