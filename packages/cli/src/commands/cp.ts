// mrg cp LOCAL node:PATH <rlz.exp.proj> (and back): copy a file into or out of
// a materialized node, streamed through the same path as `mrg exec` with stdin
// (`cat > PATH` in the node fed from the local file, or `cat PATH` into it).
import { createReadStream, createWriteStream, renameSync, rmSync, statSync } from "node:fs";
import { basename } from "node:path";
import { Readable } from "node:stream";
import type { Command } from "commander";
import { action, CliError, parseName, portalOptions, UsageError } from "../client.ts";
import { command, type NodeRef } from "./exec.ts";

interface Flags {
  portal?: string;
}

/** `node:PATH` → its parts; anything else (a path, `./a:b`, `/x:y`) is local. */
export function remoteOf(arg: string): { node: string; path: string } | undefined {
  const m = /^([A-Za-z_][A-Za-z0-9_.-]{0,252}):(.*)$/.exec(arg);
  return m ? { node: m[1]!, path: m[2]! } : undefined;
}

/** A destination that names a directory (`dir/`, or an existing local one) takes the source's file name. */
function intoDir(dest: string, source: string, isDir: boolean): string {
  return isDir || dest.endsWith("/") ? `${dest.replace(/\/*$/, "")}/${basename(source)}` : dest;
}

/** A progress line on a terminal for copies over a megabyte: bytes so far (of the total when known). */
function progress(what: string, total?: number): { add(n: number): void; end(): void } {
  if (!process.stderr.isTTY) return { add: () => {}, end: () => {} };
  let done = 0;
  let shown = 0;
  const mb = (n: number) => (n / 2 ** 20).toFixed(1);
  const show = () => {
    if (done < 2 ** 20) return;
    const pct = total ? ` ${Math.floor((100 * done) / total)}%` : "";
    process.stderr.write(`\r${what}: ${mb(done)}${total ? ` / ${mb(total)}` : ""} MB${pct}`);
    shown = Date.now();
  };
  return {
    add(n) {
      done += n;
      if (Date.now() - shown > 200) show();
    },
    end() {
      if (shown) {
        show();
        process.stderr.write("\n");
      }
    },
  };
}

export function registerCp(program: Command): void {
  portalOptions(
    program
      .command("cp <source> <destination> <rlz.exp.proj>")
      .summary("copy a file into or out of a node")
      .description(
        "copy a file into a node (LOCAL node:PATH) or out of one (node:PATH LOCAL), streamed; a destination ending in / is a directory",
      )
      .addHelpText(
        "after",
        `
Exits with the status of the command that wrote or read the file in the node
(its error is shown). A download lands in LOCAL only when complete. A local
name with a colon in it is written ./name:part.
Examples:
  mrg cp results.tar c0:/tmp/ r1.demo.admin
  mrg cp server:/var/log/syslog ./server.log r1.demo.admin`,
      ),
    { json: false },
  ).action(
    action(async (source: string, destination: string, id: string, f: Flags) => {
      const [rlz, exp, proj] = parseName(id, ["realization", "experiment", "project"]) as [string, string, string];
      const from = remoteOf(source);
      const to = remoteOf(destination);
      if (!from === !to)
        throw new UsageError(
          `cp '${source}' '${destination}': exactly one side must be node:PATH (e.g. mrg cp file c0:/tmp/ ${id})`,
        );
      if (to) {
        process.exitCode = await upload(f, { proj, exp, rlz, node: to.node }, source, to.path);
      } else {
        process.exitCode = await download(f, { proj, exp, rlz, node: from!.node }, from!.path, destination);
      }
    }),
  );
}

async function upload(f: Flags, at: NodeRef, local: string, path: string): Promise<number> {
  let size: number;
  try {
    const st = statSync(local);
    if (!st.isFile()) throw new CliError(`${local}: not a file (cp copies one file)`);
    size = st.size;
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(
      `${local}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`,
    );
  }
  if (!path) throw new UsageError(`${at.node}: give a path in the node (${at.node}:/tmp/)`);
  const dest = intoDir(path, local, false);
  const input = createReadStream(local);
  const bar = progress(`${local} → ${at.node}:${dest}`, size);
  // Paused first, so counting does not start the flow before the session forwards it.
  input.pause();
  input.on("data", (b) => bar.add(b.length));
  try {
    // The path is an argument, never part of the script: any file name is safe.
    return await command(f, at, ["sh", "-c", 'cat > "$1"', "sh", dest], undefined, { input });
  } finally {
    bar.end();
    input.destroy();
  }
}

async function download(f: Flags, at: NodeRef, path: string, local: string): Promise<number> {
  if (!path) throw new UsageError(`${at.node}: give a path in the node (${at.node}:/etc/hosts)`);
  let isDir = false;
  try {
    isDir = statSync(local).isDirectory();
  } catch {}
  const dest = intoDir(local, path, isDir);
  // Written aside and moved in place once complete, so a failed copy leaves no half file.
  const partial = `${dest}.mrg-partial`;
  const out = createWriteStream(partial);
  const opened = new Promise<void>((resolve, reject) => {
    out.once("open", () => resolve());
    out.once("error", (e) => reject(new CliError(`${dest}: ${e.message}`)));
  });
  await opened;
  const bar = progress(`${at.node}:${path} → ${dest}`);
  let code: number;
  try {
    code = await command(f, at, ["cat", "--", path], undefined, {
      input: Readable.from([]),
      stdout: (b) => {
        bar.add(b.length);
        out.write(b);
      },
    });
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  } catch (e) {
    out.destroy();
    rmSync(partial, { force: true });
    throw e;
  } finally {
    bar.end();
  }
  if (code === 0) renameSync(partial, dest);
  else rmSync(partial, { force: true });
  return code;
}
