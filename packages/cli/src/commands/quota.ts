// mrg quota: your /home and your projects' /proj directories, their quotas and what is used
import { formatQuantity } from "@merge/xir";
import type { Command } from "commander";
import { action, type OutputFlags, portalOptions, print, signedIn } from "../client.ts";

type Flags = OutputFlags & { portal?: string; user?: string };

const bytes = (n: number | null, none: string) => (n === null ? none : formatQuantity(n, "bytes"));

export function registerQuota(program: Command): void {
  portalOptions(
    program
      .command("quota")
      .description("your home and your projects' directories: quota, used, available (ENOSPC past the quota)")
      .option("--user <name>", "whose (default: you; others' for administrators)"),
  ).action(
    action(async (f: Flags) => {
      const c = signedIn(f);
      const s = await c.storage(f.user ?? (await c.whoami()).name);
      if (f.json) return print(f, s, ["home", "projects"]);
      const rows = [s.home, ...s.projects].map((v) => ({
        path: v.path,
        quota: bytes(v.quota, "none"),
        used: bytes(v.used, "-"),
        available: bytes(v.available, "-"),
      }));
      print(f, rows, ["path", "quota", "used", "available"]);
    }),
  );
}
