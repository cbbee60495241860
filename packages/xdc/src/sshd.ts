/**
 * An OpenSSH sshd of ours (the jump host, the storage server): its binary, its host key, and the
 * process itself, run by a shell script in a mount namespace of its own so that what the script
 * mounts is sshd's alone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { answers } from "./container.ts";
import { check, sleep } from "./run.ts";

/** The sshd to run: `given`, else $MERGE_SSHD, else Debian's; `missing` says what needs it when absent. */
export function sshdBinary(given: string | undefined, missing: (sshd: string) => string): string {
  const sshd = given ?? process.env.MERGE_SSHD ?? "/usr/sbin/sshd";
  if (!existsSync(sshd)) throw new Error(missing(sshd));
  return sshd;
}

/** `dir/ssh_host_ed25519_key`, made on first start (kept after: clients pin it). */
export async function hostKey(dir: string, comment: string): Promise<void> {
  const key = join(dir, "ssh_host_ed25519_key");
  if (!existsSync(key)) await check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key]);
}

export interface SshdRun {
  /** sh script that mounts what sshd is to see and ends in `exec sshd -D -e …`. */
  script: string;
  /** The namespace's mount propagation: `slave` to see mounts the machine makes later. */
  propagation: "private" | "slave";
  /** The script's environment beside PATH. */
  env: Record<string, string>;
}

/** One of our sshds: the directory with its `sshd_config` and `sshd.log`, where it listens, its process. */
export class SshdServer {
  protected child: ChildProcess | undefined;
  readonly dir: string;
  readonly host: string;
  readonly port: number;

  protected constructor(opts: { dir: string; host?: string; port?: number }, defaultPort: number) {
    this.dir = resolve(opts.dir);
    this.host = opts.host ?? "127.0.0.1";
    this.port = opts.port ?? defaultPort;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts `r.script` under `setpriv --pdeathsig` (sshd goes when this process does, even on SIGKILL)
   * and `unshare --mount`, its output appended to `sshd.log`. Up when our sshd logs that it listens on
   * host:port and the port answers (another program answering there is not ours: sshd then exits):
   * undefined; else the log's last lines, when it exited or did not listen within 10 s (the process
   * may still run: the caller stops it).
   */
  protected async runSshd(r: SshdRun): Promise<string | undefined> {
    const logFile = join(this.dir, "sshd.log");
    const logStart = existsSync(logFile) ? readFileSync(logFile, "utf8").length : 0;
    const log = openSync(logFile, "a");
    const child = spawn(
      "setpriv",
      ["--pdeathsig", "TERM", "unshare", "--mount", "--propagation", r.propagation, "/bin/sh", "-c", r.script],
      { stdio: ["ignore", log, log], env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...r.env } },
    );
    this.child = child;
    closeSync(log);
    let exited = false;
    child.once("exit", () => {
      exited = true;
    });
    const listening = `Server listening on ${this.host} port ${this.port}.`;
    for (let waited = 0; waited < 10_000 && !exited; waited += 50) {
      if (readFileSync(logFile, "utf8").slice(logStart).includes(listening) && (await answers(this.host, this.port)))
        return undefined;
      await sleep(50);
    }
    return readFileSync(logFile, "utf8").slice(logStart).trim().split("\n").slice(-3).join(" | ");
  }
}
