// `npm start` started again on the same data directory, as a user does (sim backend, the facility on fixed
// ports, like the default 6000): after a SIGKILL of `npm start` its facility child goes too and the next
// start comes up on the same ports; a facility an earlier start left running is stopped by the next one;
// the administrator's password is printed on the first start only, and changing it does not stop the
// next start from registering the facility.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { facilityDaemonArgv } from "@merge/facility";
import { PortalClient } from "@merge/portal/client";
import { alive, type Stack, startStack, stopStack } from "./fixtures/start-stack.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));

/** A port p with p, p+1 and p+2 free (the commander, registry and driver take three in a row). */
async function freeTriple(): Promise<number> {
  const listen = (port: number) =>
    new Promise<ReturnType<typeof createServer> | undefined>((res) => {
      const s = createServer();
      s.once("error", () => res(undefined));
      s.listen(port, "127.0.0.1", () => res(s));
    });
  for (;;) {
    const first = await listen(0);
    if (first === undefined) continue;
    const p = (first.address() as AddressInfo).port;
    const rest = [await listen(p + 1), await listen(p + 2)];
    for (const s of [first, ...rest]) s?.close();
    if (p < 65_000 && rest.every((s) => s !== undefined)) return p;
  }
}

async function gone(pid: number, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    if (!alive(pid)) return true;
    await sleep(100);
  }
  return !alive(pid);
}

const facilityEndpoint = async (s: Stack, token: string) =>
  (await new PortalClient(s.url, token).facilities())[0]?.endpoint;

test("npm start again: after a SIGKILL, with a facility left running, after the admin's password changed", {
  timeout: 600_000,
}, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "mrg-restart-"));
  const data = join(tmp, "data");
  const port = await freeTriple();
  const stacks: Stack[] = [];
  const others: number[] = [];
  try {
    const first = await startStack(data, "sim", port);
    stacks.push(first);
    assert.ok(first.password, "the first start prints the password");
    const admin = new PortalClient(first.url);
    admin.token = (await admin.login("admin", first.password)).token;

    // SIGKILL: no handler runs, yet the facility child stops (its pipe from the parent closed).
    first.child.kill("SIGKILL");
    assert.ok(await gone(first.facility, 30_000), `the facility (pid ${first.facility}) outlived npm start`);

    const second = await startStack(data, "sim", port);
    stacks.push(second);
    assert.equal(second.password, undefined, `the password is printed on the first start only:\n${second.out()}`);
    assert.match(second.out(), /admin\s+admin\s+\(password printed on the first start/);
    const token = (await new PortalClient(second.url).login("admin", first.password)).token;
    assert.equal(await facilityEndpoint(second, token), `https://127.0.0.1:${port}`);

    // The administrator changes the password; the next start does not need it.
    const me = new PortalClient(second.url, token);
    await me.updateUser("admin", { password: "a-new-admin-password", currentPassword: first.password });
    assert.equal(await stopStack(second), 0, second.out());
    assert.equal(alive(second.facility), false);

    // A facility daemon of this data directory left running (say, by an older version): the next start stops it.
    const facilityDir = join(data, "facility");
    const stray = spawn(
      process.execPath,
      facilityDaemonArgv({
        store: `sqlite://${join(facilityDir, "store")}`,
        certs: join(facilityDir, "certs"),
        modelFile: join(facilityDir, "phobos.json"),
        ports: { commander: port, registry: port + 1, driver: port + 2 },
        backend: "sim",
        dataDir: join(facilityDir, "backend"),
      }),
      { cwd: root, stdio: ["ignore", "ignore", "pipe"] },
    );
    others.push(stray.pid as number);
    await new Promise<void>((res, rej) => {
      let err = "";
      stray.stderr?.on("data", (d) => {
        err += d;
        if (/commander /.test(err)) res();
      });
      stray.once("exit", (code) => rej(new Error(`the stray facility exited (${code}): ${err}`)));
    });
    writeFileSync(join(facilityDir, "facility.pid"), `${stray.pid}\n`);

    const third = await startStack(data, "sim", port);
    stacks.push(third);
    assert.match(third.out(), new RegExp(`stopping the facility an earlier start left running \\(pid ${stray.pid}\\)`));
    assert.equal(alive(stray.pid as number), false);
    const fresh = (await new PortalClient(third.url).login("admin", "a-new-admin-password")).token;
    assert.equal(await facilityEndpoint(third, fresh), `https://127.0.0.1:${port}`);
    assert.equal(readFileSync(join(facilityDir, "facility.pid"), "utf8").trim(), String(third.facility));
    assert.equal(await stopStack(third), 0, third.out());
    assert.equal(alive(third.facility), false);
  } finally {
    for (const s of stacks) {
      if (s.child.exitCode === null && s.child.signalCode === null) await stopStack(s);
      if (alive(s.facility)) process.kill(s.facility, "SIGKILL");
    }
    for (const pid of others) if (alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(tmp, { recursive: true, force: true });
  }
});
