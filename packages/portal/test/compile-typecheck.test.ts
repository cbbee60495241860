// The portal's compile type-checks TypeScript models as mrg compile does: a
// unit mistake is an error at its line and the model does not run. The check
// reads the model text in memory: another path it names is not read, and its
// existence is not told.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compileJob } from "../src/compiler.ts";

const units = [
  'import { Network, memory, ms } from "@merge/model";',
  'const net = new Network("units");',
  'net.connect([net.node("a", memory.ge(ms(10))), net.node("b")]);',
  "export default net;",
  "",
].join("\n");

test("a unit mistake in a pushed TypeScript model is a located compile error", async () => {
  const r = await compileJob({ source: units, lang: "ts", filename: "units.ts", timeoutMs: 60_000 });
  assert.equal(r.xirJson, null);
  assert.deepEqual(
    r.errors.map((e) => [e.line, e.column]),
    [[3, 38]],
  );
  assert.match(r.errors[0]?.message ?? "", /a size was expected, not a duration; write e\.g\. gb\(8\)/);
});

test("the type-check reads nothing outside the library: an existing and a missing path answer alike", async () => {
  const probe = (path: string) =>
    compileJob({
      source: `/// <reference path="${path}" />\nimport x from "${path}";\n${units.replace("memory.ge(ms(10))", "memory.ge(ms(10) as never)")}`,
      lang: "ts",
      filename: "probe.ts",
      timeoutMs: 60_000,
    });
  const [real, missing] = await Promise.all([probe("/etc/passwd"), probe("/etc/no-such-file-here")]);
  const words = (r: Awaited<ReturnType<typeof probe>>) =>
    r.errors.map((e) => e.message.replaceAll(/\/etc\/[\w.-]+/g, "P"));
  assert.equal(real.xirJson, null);
  assert.ok(real.errors.length >= 1);
  assert.deepEqual(words(real), words(missing));
  assert.ok(!real.errors.some((e) => /root:/.test(e.message)));
});
