// Starts one of the command lines from any directory (and through a symlink on the
// PATH): the built JavaScript in ../dist (npm run build), else the TypeScript
// sources through tsx. `--version` alone is answered here, before loading the
// program: it needs nothing of it, and every command line pays for that load.
import { existsSync, readFileSync } from "node:fs";

export async function launch(name) {
  const args = process.argv.slice(2);
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    process.stdout.write(`${pkg.version}\n`);
    return;
  }
  const built = new URL(`../dist/${name}.js`, import.meta.url);
  if (existsSync(built)) await import(built.href);
  else {
    process.stderr.write(`${name}: not built (npm run build); running from the sources, which starts slower\n`);
    await import("tsx");
    await import(new URL(`../src/${name}.ts`, import.meta.url).href);
  }
}
