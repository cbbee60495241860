import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { nativeProgram } from "../../src/linux/native.ts";
import { alive } from "../../src/linux/processes.ts";

/** One raw HTTP exchange (no client-side path normalisation): the whole answer as text. */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let out = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      out += d;
    });
    s.on("error", reject);
    s.on("end", () => resolve(out));
    s.on("connect", () => s.write(request));
  });
}

const get = (port: number, path: string) => exchange(port, `GET ${path} HTTP/1.0\r\nHost: foundry\r\n\r\n`);

describe("mrg-foundry: the infrapod's configuration server", { skip: !spawnSync("gcc", ["--version"]).stdout }, () => {
  let dir: string;
  let pid = 0;
  let port = 0;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mrg-foundry-test-"));
    const bin = await nativeProgram(join(dir, "data"), "mrg-foundry");
    const root = join(dir, "foundry");
    mkdirSync(join(root, "n1"), { recursive: true });
    writeFileSync(join(root, "n1", "config.txt"), "hostname n1\n");
    writeFileSync(join(root, "accounts.sh"), "x".repeat(200_000));
    writeFileSync(join(dir, "secret"), "outside\n");
    for (let k = 0; k < 20 && !pid; k++) {
      port = 20000 + Math.floor(Math.random() * 20000);
      const r = spawnSync(bin, ["127.0.0.1", String(port), root], { encoding: "utf8" });
      if (r.status === 0) pid = Number(r.stdout.trim());
    }
    assert.ok(pid > 0, "mrg-foundry started on a free loopback port");
  });
  after(() => {
    if (pid && alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  test("serves files under its directory, whole, with their length", async () => {
    const r = await get(port, "/n1/config.txt");
    assert.match(r, /^HTTP\/1\.0 200 OK\r\n/);
    assert.match(r, /Content-Length: 12\r\n/);
    assert.ok(r.endsWith("\r\n\r\nhostname n1\n"), r);
    const big = await get(port, "/accounts.sh?x=1");
    assert.equal(big.split("\r\n\r\n")[1]?.length, 200_000, "a large file arrives whole; the query is ignored");
    const head = await exchange(port, "HEAD /n1/config.txt HTTP/1.0\r\n\r\n");
    assert.match(head, /Content-Length: 12\r\n/);
    assert.ok(head.endsWith("\r\n\r\n"), "HEAD: no body");
  });

  test("a node's configuration says whether the project's accounts file is there (the boot asks for it only then)", async () => {
    assert.match(await get(port, "/n1/config.txt"), /\r\nX-Merge-Accounts: 1\r\n/);
    assert.doesNotMatch(await get(port, "/accounts.sh"), /X-Merge-Accounts/, "only with a configuration");
    const f = join(dir, "foundry", "accounts.sh");
    renameSync(f, `${f}.away`);
    try {
      assert.match(await get(port, "/n1/config.txt"), /\r\nX-Merge-Accounts: 0\r\n/);
    } finally {
      renameSync(`${f}.away`, f);
    }
  });

  test("nothing outside its directory, no directories, only GET and HEAD", async () => {
    for (const p of ["/../secret", "/n1/../../secret", "/n1/..", "/n1", "/", "/missing.txt"])
      assert.match(await get(port, p), /^HTTP\/1\.0 404 /, p);
    assert.match(await exchange(port, "POST /n1/config.txt HTTP/1.0\r\n\r\n"), /^HTTP\/1\.0 405 /);
    assert.match(await exchange(port, "garbage\r\n\r\n"), /^HTTP\/1\.0 400 /);
  });

  test("one process answers many clients at once, and a silent client holds up no one", async () => {
    const silent = connect(port, "127.0.0.1");
    try {
      const answers = await Promise.all(Array.from({ length: 300 }, () => get(port, "/n1/config.txt")));
      assert.equal(answers.filter((a) => a.endsWith("hostname n1\n")).length, 300);
    } finally {
      silent.destroy();
    }
    assert.ok(alive(pid));
  });
});
