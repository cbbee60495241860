// The portal's compile (a child process per model) type-checks TypeScript
// models as mrg compile does: a unit mistake is an error at its line, and the
// model does not become a revision.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compileModel } from "../src/compiler.ts";

test("a unit mistake in a pushed TypeScript model is a located compile error", async () => {
  const source = [
    'import { Network, memory, ms } from "@merge/model";',
    'const net = new Network("units");',
    'net.connect([net.node("a", memory.ge(ms(10))), net.node("b")]);',
    "export default net;",
    "",
  ].join("\n");
  const r = await compileModel(source, "ts", "units.ts");
  assert.equal(r.xir, null);
  assert.deepEqual(
    r.errors.map((e) => [e.line, e.column]),
    [[3, 38]],
  );
  assert.match(r.errors[0]?.message ?? "", /a size was expected, not a duration; write e\.g\. gb\(8\)/);
});
