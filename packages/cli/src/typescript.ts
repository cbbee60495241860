// The built commands are JavaScript and start without a TypeScript compiler.
// Commands that run TypeScript (a user's model, a facility model in .ts, and
// @merge/model itself, which runs models from its sources) load tsx first; run
// from sources (tsx already loaded) this does nothing.

let loaded: Promise<unknown> | undefined;
/** tsx's entry (`node --import tsx`); it has no types of its own to check. */
const TSX: string = "tsx";

/** Lets this process import .ts files, as `node --import tsx` does. */
export function loadTypeScript(): Promise<unknown> {
  if (process.env.MERGE_CLI_BUILT !== "1") return Promise.resolve();
  loaded ??= import(TSX);
  return loaded;
}
