// cog model check|show, run as the operator runs them: a subprocess.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { phobos } from "@merge/facility-model";
import { cogProgram } from "../src/cog-program.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const cogPath = join(root, "packages/cli/src/cog.ts");
const fixture = join(root, "packages/facility-model/test/fixtures/tiny-facility.ts");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cog(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", cogPath, ...args],
      { cwd: root, maxBuffer: 64 * 2 ** 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("cog model", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "cog-model-test-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("check sample:phobos passes with a one-line summary", async () => {
    const r = await cog("model", "check", "sample:phobos");
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /facility phobos: 11 resources \(3 switch, 4 node, 1 emulator, 1 infrapod-server, 1 storage, 1 gateway\)/,
    );
    assert.match(r.stdout, /sample:phobos: ok, 0 errors, 0 warnings/);
  });

  it("show --json writes a sample that check accepts back from the file", async () => {
    const shown = await cog("model", "show", "sample:phobos", "--json");
    assert.equal(shown.code, 0, shown.stderr);
    const doc = JSON.parse(shown.stdout) as { name: string; resources: unknown[] };
    assert.equal(doc.name, "phobos");
    assert.equal(doc.resources.length, 11);
    const file = join(dir, "phobos.json");
    await writeFile(file, shown.stdout);
    const checked = await cog("model", "check", file);
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.match(checked.stdout, /ok, 0 errors/);
  });

  it("show prints tables and --out writes the model", async () => {
    const out = join(dir, "two-rack.json");
    const r = await cog("model", "show", "sample:two-rack", "--out", out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /│ testbed nodes\s+│ 40\s+│/);
    assert.match(r.stdout, /│ r430\s+│ 20\s+│ 6\s+│ 16\s+│ 64 GiB/);
    assert.match(r.stdout, /│ xpnet\s+│ spine\s+│ 1\s+│/);
    assert.match(r.stdout, new RegExp(`wrote ${out}`));
    const written = JSON.parse(await readFile(out, "utf8")) as { resources: { kind: string }[] };
    assert.equal(written.resources.filter((x) => x.kind === "node").length, 40);
  });

  it("check lists every error and exits 1", async () => {
    const f = phobos();
    f.cables = f.cables.filter((c) => !(c.ends[0].resource === "n2" && c.ends[0].port === "eth0"));
    f.cables.push({
      id: "stray",
      ends: [
        { resource: "n9", port: "eth0" },
        { resource: "ileaf", port: "swp16" },
      ],
    });
    const file = join(dir, "broken.json");
    await writeFile(file, JSON.stringify(f));
    const r = await cog("model", "check", file);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^error: cable stray: end 1 names resource n9, which is not in the facility$/m);
    assert.match(r.stdout, /^error: node n2: infranet port eth0 is not cabled/m);
    assert.match(r.stdout, /INVALID, 2 errors, 0 warnings/);
    const json = await cog("model", "check", file, "--json");
    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout) as {
      ok: boolean;
      problems: unknown[];
      summary: { nodes: { total: number } }[];
    };
    assert.equal(report.ok, false);
    assert.equal(report.problems.length, 2);
    assert.equal(report.summary[0]?.nodes.total, 4);
  });

  it("check caps a flood of errors unless --all", async () => {
    const f = phobos();
    // Two errors a cable: neither end exists.
    for (let i = 0; i < 125; i++) {
      f.cables.push({
        id: `stray${i}`,
        ends: [
          { resource: `x${i}`, port: "eth0" },
          { resource: `y${i}`, port: "eth0" },
        ],
      });
    }
    const file = join(dir, "flood.json");
    await writeFile(file, JSON.stringify(f));
    const r = await cog("model", "check", file);
    assert.equal(r.code, 1);
    const lines = r.stdout.split("\n").filter((l) => l.startsWith("error: "));
    assert.equal(lines.length, 200);
    assert.match(r.stdout, /\.\.\. and 50 more errors \(--all lists them\)/);
    assert.match(r.stdout, /INVALID, 250 errors/);
    const all = await cog("model", "check", file, "--all");
    assert.equal(all.stdout.split("\n").filter((l) => l.startsWith("error: ")).length, 250);
  });

  it("names the line of a JSON syntax error and the path of a schema error", async () => {
    const bad = join(dir, "syntax.json");
    await writeFile(bad, '{\n  "xir": "1.0",\n  "name": phobos\n}\n');
    const r = await cog("model", "check", bad);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /syntax\.json:3:11: invalid JSON: unexpected "p"/);
    const schema = join(dir, "schema.json");
    const f = phobos() as unknown as { resources: { kind: string }[] };
    (f.resources[0] as { kind: string }).kind = "toaster";
    const text = JSON.stringify(f, null, 2);
    await writeFile(schema, text);
    const line = text.split("\n").findIndex((l) => l.includes('"toaster"')) + 1;
    const s = await cog("model", "check", schema);
    assert.equal(s.code, 1);
    assert.match(
      s.stdout,
      new RegExp(`^error: .*schema\\.json:${line}:\\d+: resources\\[0\\]\\.kind: must be one of "node", "switch"`, "m"),
    );
  });

  it("loads a TypeScript module exporting a builder", async () => {
    const r = await cog("model", "check", fixture);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /facility tiny: 5 resources/);
  });

  it("shows a generated resource internet with its interconnects", async () => {
    const r = await cog("model", "show", "sample:internet:2x100:3");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /resource internet: 2 facilities/);
    assert.match(r.stdout, /│ site0\s+│ \d+\s+│ 100\s+│/);
    assert.match(r.stdout, /site0\/gw0\.eth3\s+│ site1\/gw0\.eth3/);
  });

  it("show --resource lists a resource's ports and where they lead", async () => {
    const r = await cog("model", "show", "sample:phobos", "--resource", "n0");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^node n0 \(facility phobos\): alloc physical, virtual$/m);
    assert.match(r.stdout, /│ memory\.capacity\s+│ 128 GiB\s+│/);
    assert.match(
      r.stdout,
      /│ eth0\s+│ infranet\s+│ 1 Gbit\/s\s+│ e1000e\s+│ 02:[0-9a-f:]+\s+│ ileaf\.swp1\s+│ n0\/eth0~ileaf\/swp1\s+│/,
    );
    const gw = await cog("model", "show", "sample:internet:2x50", "--resource", "site1/gw0");
    assert.equal(gw.code, 0, gw.stderr);
    assert.match(
      gw.stdout,
      /│ eth3\s+│ gateway\s+│ .*│ site0\/gw0\.eth3\s+│ interconnect site0\/gw0\/eth3~site1\/gw0\/eth3/,
    );
    const none = await cog("model", "show", "sample:phobos", "--resource", "n9");
    assert.equal(none.code, 1);
    assert.match(none.stderr, /sample:phobos has no resource n9/);
  });

  it("says what sources exist for an unknown sample or file", async () => {
    const r = await cog("model", "check", "sample:mars");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /sample:mars: no such sample; samples are sample:phobos, sample:two-rack/);
    const missing = await cog("model", "show", join(dir, "nope.json"));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*nope\.json: no such file/);
  });
});

describe("cog program", () => {
  it("registers every commands/cog-*.ts group and survives a broken one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cog-groups-test-"));
    try {
      await writeFile(
        join(dir, "cog-hello.ts"),
        'export function register(p: any) { p.command("hello").description("says hello"); }\n',
      );
      await writeFile(join(dir, "cog-broken.ts"), 'throw new Error("boom");\n');
      await writeFile(join(dir, "cog-empty.ts"), "export const nothing = 1;\n");
      await writeFile(join(dir, "helper.ts"), 'throw new Error("not a group, never loaded");\n');
      const errors: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string) => {
        errors.push(String(chunk));
        return true;
      }) as typeof process.stderr.write;
      let names: string[];
      try {
        names = (await cogProgram(dir)).commands.map((c) => c.name());
      } finally {
        process.stderr.write = write;
      }
      assert.deepEqual(names, ["hello"]);
      assert.equal(errors.length, 2, errors.join(""));
      assert.match(errors[0] ?? "", /commands\/cog-broken\.ts failed to load, its commands are unavailable: boom/);
      assert.match(errors[1] ?? "", /commands\/cog-empty\.ts does not export register/);
      const real = (await cogProgram()).commands.map((c) => c.name());
      assert.ok(real.includes("model"), real.join());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
