/**
 * The small C programs the data plane needs (packages/facility/native):
 * `mrg-node` starts node containers and boots them (`mrg-boot.h`), `mrg-emu` is the no-netem link emulator,
 * `mrg-reach` checks that nodes answer on the infranet, `mrg-foundry` serves the nodes' configuration,
 * `mrg-agent` is a VM's guest agent (in its initramfs).
 * They are compiled from the repository's source on first use and cached
 * under the data directory by a hash of the source, so an edit rebuilds.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { check, run } from "./command.ts";

export type NativeProgram = "mrg-node" | "mrg-emu" | "mrg-reach" | "mrg-foundry" | "mrg-agent";

const SOURCE_DIR = fileURLToPath(new URL("../../native/", import.meta.url));

export async function nativeProgram(dataDir: string, name: NativeProgram): Promise<string> {
  const src = join(SOURCE_DIR, `${name}.c`);
  // The headers count too (mrg-node includes its boot, mrg-boot.h): an edit of either rebuilds.
  const h = createHash("sha256").update(readFileSync(src));
  for (const f of readdirSync(SOURCE_DIR)
    .filter((f) => f.endsWith(".h"))
    .sort())
    h.update(readFileSync(join(SOURCE_DIR, f)));
  const hash = h.digest("hex").slice(0, 12);
  const dir = join(dataDir, "bin");
  const out = join(dir, `${name}-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  // Static where the C library allows: no dynamic loader at start, and smaller forks (every container's init
  // is a fork of mrg-node, its boot another).
  const r = await run("gcc", ["-O2", "-Wall", "-static", "-o", tmp, src]);
  if (r.code !== 0) await check("gcc", ["-O2", "-Wall", "-o", tmp, src]);
  renameSync(tmp, out);
  return out;
}
