/**
 * Hostile models, pushed through the API by an ordinary activated user: each
 * is refused by the confinement with a clear error in its revision, nothing
 * secret comes back, the portal keeps answering, and no scratch directory is
 * left in /tmp.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { availableConfinement, SCRATCH_PREFIX } from "@merge/model";
import type { PortalClient } from "../src/client/index.ts";
import { type Harness, startHarness } from "./harness.ts";

const confined = availableConfinement() !== "none";
// Generous: a loaded test box runs compiles at the lowest priority; only the endless loop and the bomb wait it out.
const TIMEOUT_MS = 20_000;

describe("hostile models run confined", { skip: !confined && "no confinement on this host" }, () => {
  let h: Harness;
  let eve: PortalClient;
  let password: string;
  let connections = 0;
  let datagrams = 0;
  const tcp = createServer((s) => {
    connections++;
    s.destroy();
  });
  const udp = createSocket("udp4");
  udp.on("message", () => datagrams++);
  let tcpPort = 0;
  let udpPort = 0;
  const outside = join(tmpdir(), `merge-escape-${process.pid}`);

  before(async () => {
    h = await startHarness({ compile: { timeoutMs: TIMEOUT_MS } });
    password = h.started.admin.password as string;
    eve = await h.user("eve");
    await eve.createExperiment("eve", { name: "evil" });
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
    tcpPort = (tcp.address() as { port: number }).port;
    await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
    udpPort = udp.address().port;
  });
  after(async () => {
    await h.stop();
    tcp.close();
    udp.close();
  });

  /** Pushes `source`; asserts a compile error matching `expect`, no leak, a live portal. Returns the messages. */
  async function refused(lang: "ts" | "py", source: string, expect: RegExp): Promise<string> {
    const rev = await eve.push("eve", "evil", source, lang, lang === "ts" ? "evil.ts" : "evil.py");
    const text = JSON.stringify(rev);
    const messages = rev.errors.map((e) => e.message).join("\n");
    assert.equal(rev.status, "error", `compiled: ${text.slice(0, 500)}`);
    assert.match(messages, expect);
    assert.ok(!text.includes(password), "the admin password leaked");
    assert.ok(!/root:[^:]*:\d+:/.test(text), "/etc/shadow or /etc/passwd leaked");
    const t = Date.now();
    assert.equal((await h.anon.health()).status, "ok");
    assert.ok(Date.now() - t < 5000, "the portal still answers");
    return messages;
  }

  const credentials = () => join(h.dataDir, "admin-credentials");

  describe("TypeScript", () => {
    test("runs as an unprivileged uid without the portal's rights", async () => {
      const m = await refused("ts", 'throw new Error("uid=" + process.getuid?.());\nexport {};\n', /uid=\d+/);
      assert.doesNotMatch(m, /uid=0\b/);
    });
    test("cannot read the admin credentials, the data directory or /etc/shadow", async () => {
      await refused(
        "ts",
        `import {readFileSync} from "node:fs";\nthrow new Error(readFileSync(${JSON.stringify(credentials())}, "utf8"));\n`,
        /ENOENT|restricted|denied/,
      );
      await refused(
        "ts",
        `import {readdirSync} from "node:fs";\nthrow new Error(readdirSync(${JSON.stringify(h.dataDir)}).join());\n`,
        /ENOENT|restricted|denied/,
      );
      await refused(
        "ts",
        `import {readFileSync} from "node:fs";\nthrow new Error(readFileSync("/etc/shadow", "utf8"));\n`,
        /ENOENT|restricted|denied/,
      );
    });
    test("cannot start a process", async () => {
      await refused(
        "ts",
        `import {execSync} from "node:child_process";\nthrow new Error(String(execSync("id")));\n`,
        /ENOENT|EACCES|denied/,
      );
    });
    test("cannot open a socket, on loopback or elsewhere", async () => {
      const connect = (host: string, port: number) =>
        `import {connect} from "node:net";\nawait new Promise((ok, fail) => { const s = connect(${port}, ${JSON.stringify(host)}, () => ok(s)); s.on("error", fail); });\nthrow new Error("connected");\n`;
      await refused("ts", connect("127.0.0.1", tcpPort), /ENETUNREACH|ECONNREFUSED|EADDRNOTAVAIL|network/);
      await refused("ts", connect("192.0.2.1", 80), /ENETUNREACH|EADDRNOTAVAIL|network/);
      const send = `import {createSocket} from "node:dgram";\nconst u = createSocket("udp4");\nawait new Promise((ok, fail) => u.send("x", ${udpPort}, "127.0.0.1", (e) => (e ? fail(e) : ok(0))));\nthrow new Error("sent");\n`;
      await refused("ts", send, /ENETUNREACH|EADDRNOTAVAIL|EPERM|network/);
      assert.equal(connections, 0);
      assert.equal(datagrams, 0);
    });
    test("cannot write outside its scratch directory", async () => {
      await refused(
        "ts",
        `import {writeFileSync} from "node:fs";\nwriteFileSync(${JSON.stringify(outside)}, "x");\n`,
        /ENOENT|EROFS|EACCES|restricted|denied/,
      );
      assert.equal(existsSync(outside), false);
    });
    test("a fork bomb, 4 GB of memory, 100 MB of output, an endless loop: each stopped", async () => {
      const bomb = `import {spawn} from "node:child_process";\nfor (;;) { try { spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"]).on("error", () => {}); } catch {} }\n`;
      await refused("ts", bomb, /did not finish|ran out of memory|exited|EAGAIN/);
      await refused(
        "ts",
        "const b = Buffer.alloc(4 * 1024 ** 3, 1);\nthrow new Error(String(b.length));\n",
        /allocation failed|out of memory|Array buffer/i,
      );
      await refused(
        "ts",
        "const a: number[][] = [];\nfor (;;) a.push(new Array(1e6).fill(1.5));\n",
        /ran out of memory|did not finish/,
      );
      await refused(
        "ts",
        'import { Network } from "@merge/model";\nprocess.stdout.write("x".repeat(100 * 1024 * 1024));\nexport default new Network("loud");\n',
        /printed more than/,
      );
      await refused("ts", "for (;;) {}\n", /did not finish within 20 s/);
    });
  });

  describe("Python", () => {
    test("cannot read the admin credentials, the data directory or /etc/shadow", async () => {
      await refused("py", `print(open(${JSON.stringify(credentials())}).read())\n`, /may not read|No such file/);
      await refused("py", `import os\nprint(os.listdir(${JSON.stringify(h.dataDir)}))\n`, /may not|No such file/);
      await refused("py", 'print(open("/etc/shadow").read())\n', /may not read|No such file/);
    });
    test("cannot start a process or open a socket", async () => {
      await refused("py", "import subprocess\nsubprocess.run(['id'])\n", /process/);
      await refused("py", `import socket\nsocket.create_connection(('127.0.0.1', ${tcpPort}), timeout=2)\n`, /network/);
      await refused(
        "py",
        `import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', ${udpPort}))\n`,
        /network/,
      );
      assert.equal(connections, 0);
      assert.equal(datagrams, 0);
    });
    test("cannot write outside its working directory", async () => {
      await refused("py", `open(${JSON.stringify(outside)}, 'w').write('x')\n`, /may write files only/);
      assert.equal(existsSync(outside), false);
    });
    test("a fork bomb, 4 GB of memory, 100 MB of output, an endless loop: each stopped", async () => {
      await refused("py", "import os\nwhile True:\n    os.fork()\n", /process|fork/);
      await refused("py", "hog = bytearray(4 * 1024 ** 3)\n", /memory/i);
      await refused("py", "import sys\nsys.stdout.write('x' * (100 * 1024 * 1024))\n", /printed more than/);
      await refused("py", "while True:\n    pass\n", /did not finish within 20 s/);
    });
  });

  test("no scratch directory is left in /tmp", () => {
    const left = readdirSync(tmpdir()).filter((d) => d.startsWith(`${SCRATCH_PREFIX}${process.pid}-`));
    assert.deepEqual(left, []);
  });

  test("the credentials file is still there and unchanged (the refusals were the sandbox's, not a missing file)", () => {
    assert.match(readFileSync(credentials(), "utf8"), new RegExp(password));
  });
});
