// A shared host's NAT settings (linux/nat.ts): what an operator writes, what is refused and why,
// and the infranet address a host without the infrapod takes for it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { controlOf, natInfranetAddress, natProblem, parseNatPorts } from "../src/linux/nat.ts";

test("--nat FIRST-LAST[/N]: parsed, checked, and the error says what is valid", () => {
  assert.deepEqual(parseNatPorts("20000-29999/10"), { first: 20000, last: 29999, perNode: 10 });
  assert.deepEqual(parseNatPorts("20000-20099"), { first: 20000, last: 20099, perNode: 10 });
  assert.throws(() => parseNatPorts("20000:20099"), /--nat '20000:20099': expected FIRST-LAST\[\/PORTS_PER_NODE\]/);
  const ok = { address: "203.0.113.7", first: 20000, last: 20099, perNode: 10 };
  assert.equal(natProblem(ok), undefined);
  assert.match(natProblem({ ...ok, first: 80 }) ?? "", /^--nat first: port 80 is not usable: .*within 1024-65535/);
  assert.match(
    natProblem({ ...ok, last: 19999 }) ?? "",
    /^--nat last: 19999 is below first \(20000\): expected first ≤ last/,
  );
  assert.match(natProblem({ ...ok, perNode: 101 }) ?? "", /^--nat perNode: 101 ports a node: .*from 1 to 100/);
  assert.match(natProblem({ ...ok, address: "site1" }) ?? "", /^--nat-address: 'site1' is not an IPv4 address/);
  assert.deepEqual(controlOf(ok, 20010), { address: "203.0.113.7", first: 20010, last: 20019, ssh: 20010 });
});

test("a host's own infranet address for NAT: below the top 256 (XDCs), one per host, refused on a tiny infranet", () => {
  assert.deepEqual(natInfranetAddress("172.30.0.0/16", 1), { address: "172.30.254.253", bits: 16 });
  assert.deepEqual(natInfranetAddress("172.30.0.0/16", 2), { address: "172.30.254.252", bits: 16 });
  assert.throws(() => natInfranetAddress("172.30.0.0/24", 1), /too small/);
  assert.throws(() => natInfranetAddress("nonsense", 1), /not an IPv4 prefix/);
});
