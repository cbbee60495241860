/**
 * A portal child process on a fresh sqlite data directory, with an activated
 * user `bench`, for benchmarks (so the load generator does not share the
 * server's event loop).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PortalClient } from "../src/client/index.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

export interface Server {
  url: string;
  token: string;
  client: PortalClient;
  stop(): Promise<void>;
}

export async function startServer(): Promise<Server> {
  const dataDir = await mkdtemp(join(tmpdir(), "merge-portal-bench-"));
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", MAIN, "--data", dataDir, "--port", "0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (b) => {
      out += b;
      const m = /PORTAL (\{.*\})/.exec(out);
      if (m) resolve((JSON.parse(m[1] as string) as { url: string }).url);
    });
    child.on("exit", (code) => reject(new Error(`portal exited (${code})`)));
  });
  const { password } = JSON.parse(await readFile(join(dataDir, "admin-credentials"), "utf8")) as { password: string };
  const anon = new PortalClient(url);
  await anon.register({ name: "bench", email: "bench@example.org", password: "bench-password" });
  const admin = new PortalClient(url, (await anon.login("admin", password)).token);
  await admin.setUserState("bench", "active");
  const { token } = await anon.login("bench", "bench-password");
  return {
    url,
    token,
    client: new PortalClient(url, token),
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
