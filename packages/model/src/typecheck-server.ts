/**
 * A type-check server for `mrg compile`: one process per user and library
 * version keeps the TypeScript language service warm, so a compile after an
 * edit does not pay for loading the compiler and parsing the libraries again.
 * `mrg compile` starts it on first use (typecheck.ts); it listens on a Unix
 * socket in the user's 0700 cache directory, answers one JSON line per
 * connection ({file} → {diagnostics}), and exits after IDLE_MS without work.
 *
 *   node --import tsx typecheck-server.ts <socket>
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { checkHere } from "./typecheck.ts";

const IDLE_MS = 10 * 60_000;

const socket = process.argv[2];
if (!socket) {
  process.stderr.write("usage: typecheck-server.ts <socket>\n");
  process.exit(2);
}

let idle: NodeJS.Timeout | undefined;
function rest(): void {
  if (idle) clearTimeout(idle);
  idle = setTimeout(stop, IDLE_MS);
}

const server = createServer((conn) => {
  rest();
  let text = "";
  conn.setEncoding("utf8");
  conn.on("data", async (chunk: string) => {
    text += chunk;
    const end = text.indexOf("\n");
    if (end < 0) return;
    try {
      const { file } = JSON.parse(text.slice(0, end)) as { file?: unknown };
      if (typeof file !== "string") throw new Error("expected {file}");
      conn.end(`${JSON.stringify({ diagnostics: await checkHere(file) })}\n`);
    } catch (e) {
      conn.end(`${JSON.stringify({ error: (e as Error).message })}\n`);
    }
    rest();
  });
  conn.on("error", () => conn.destroy());
});

function stop(): void {
  server.close();
  // Only our own socket: a newer server may have taken the path.
  let owner = "";
  try {
    owner = readFileSync(`${socket}.pid`, "utf8").trim();
  } catch {}
  if (owner === String(process.pid)) {
    rmSync(socket as string, { force: true });
    rmSync(`${socket}.pid`, { force: true });
  }
  process.exit(0);
}

process.on("SIGTERM", stop);
process.on("SIGINT", stop);
server.on("error", () => process.exit(1)); // another server won the race for the socket
server.listen(socket, () => {
  writeFileSync(`${socket}.pid`, `${process.pid}\n`);
  rest();
});
