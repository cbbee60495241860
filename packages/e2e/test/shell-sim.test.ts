// The interactive shell on the sim backend, through portal (WebSocket) →
// commander (bidi gRPC, mTLS) → driver: refused clearly, since sim nodes are not
// real; bad requests and unauthenticated callers are refused at the upgrade.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, PortalClient } from "@merge/portal/client";
import { linkOf } from "@merge/xir";
import { simSuite } from "./portal-stack.ts";

const sim = simSuite("mrg-shell-sim-");
const { mrg } = sim;

test("a shell on the sim backend is refused with the reason; bad and unauthenticated requests too", async () => {
  const xir = JSON.stringify({
    xir: "1.0",
    name: "pair",
    parameters: {},
    nodes: ["a", "b"].map((name) => ({
      name,
      constraints: [],
      sockets: [{ index: 0, addrs: [], constraints: [] }],
      properties: {},
    })),
    links: [
      linkOf("ab", [
        ["a", 0],
        ["b", 0],
      ]),
    ],
  });
  await sim.stack.accepted("p1", "e1", xir, "xir");
  const up = await mrg(["materialize", "r1.e1.p1", "--timeout", "60"]);
  assert.equal(up.code, 0, up.stderr);

  // Through mrg (piped input): the facility's refusal, and mrg fails.
  const sh = await mrg(["exec", "a", "r1.e1.p1"], "echo hi\nexit 0\n");
  assert.equal(sh.code, 1, sh.stdout + sh.stderr);
  assert.match(sh.stderr, /the sim backend runs no real nodes, so there is no shell to open/);

  // A command with piped stdin takes the same path: the same refusal, for exec.
  const cat = await mrg(["exec", "a", "r1.e1.p1", "--", "cat"], "hi\n");
  assert.equal(cat.code, 1, cat.stdout + cat.stderr);
  assert.match(cat.stderr, /the sim backend runs no real nodes, so there is nothing to exec in/);

  // Through the WebSocket: the refusal arrives as {error} and `done` rejects with it.
  const none = { stdout: () => {}, stderr: () => {} };
  const s = await sim.stack.admin.shell("p1", "e1", "r1", "a", { tty: true, size: { rows: 24, cols: 80 } }, none);
  await assert.rejects(s.done, /no real nodes/);

  // Unknown node: refused before anything opens, naming the nodes there are.
  const unknown = await mrg(["exec", "zz", "r1.e1.p1"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no node 'zz' \(nodes: a, b\)/);

  // Bad window size and no credentials: refused at the upgrade with an HTTP status.
  const check = async (p: Promise<unknown>, status: number, re: RegExp) =>
    assert.rejects(p, (e) => {
      assert.ok(e instanceof ApiError, String(e));
      assert.equal(e.status, status);
      assert.match(e.message, re);
      return true;
    });
  await check(
    sim.stack.admin.shell("p1", "e1", "r1", "a", { tty: true, size: { rows: 0, cols: 80 } }, none),
    400,
    /rows/,
  );
  await check(
    new PortalClient(sim.stack.portal.url).shell("p1", "e1", "r1", "a", { tty: false }, none),
    401,
    /signed-in/,
  );
  // A command runs without a tty, and needs a program name; an argument too long fails the query's schema.
  const tty = await sim.stack.admin.shell("p1", "e1", "r1", "a", { tty: true, argv: ["cat"] }, none);
  await assert.rejects(tty.done, /a command \(argv\) runs without a tty/);
  const unnamed = await sim.stack.admin.shell("p1", "e1", "r1", "a", { tty: false, argv: ["", "x"] }, none);
  await assert.rejects(unnamed.done, /argv\[0\] is empty/);
  await check(
    sim.stack.admin.shell("p1", "e1", "r1", "a", { tty: false, argv: ["x".repeat(5000)] }, none),
    400,
    /argv/,
  );

  const down = await mrg(["dematerialize", "r1.e1.p1", "--timeout", "60"]);
  assert.equal(down.code, 0, down.stderr);
});
