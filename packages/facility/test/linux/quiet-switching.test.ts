// The testbed's own switching (the infrapod's infranet bridge and ports, the xpnet's LAN bridges and ports, the
// emulator's ports) sends nothing a node receives: every frame on a node's interfaces comes from a node (or, on
// the infranet, from the infrapod's bridge). IPv6 left on in those namespaces had each port send MLD reports and
// router solicitations onto the experimenter's links.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { namesOf, prefixOf } from "../../src/linux/names.ts";
import { experiment, link, localPlan, node, skip, suiteHarness } from "./fixture.ts";

/** Print the source MAC of every frame received on these interfaces for `seconds` (run in a node's namespace). */
const SNIFF = `
import socket, sys, time, select
socks = []
for ifname in sys.argv[2:]:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
    s.bind((ifname, 0))
    socks.append((ifname, s))
end = time.time() + float(sys.argv[1])
while time.time() < end:
    ready, _, _ = select.select([s for _, s in socks], [], [], 0.2)
    for ifname, s in socks:
        if s in ready:
            d, a = s.recvfrom(2000)
            if a[2] != socket.PACKET_OUTGOING:
                what = d[12:14].hex()
                if what == "0800":
                    what += " p%d %s>%s" % (d[23], socket.inet_ntoa(d[26:30]), socket.inet_ntoa(d[30:34]))
                print(ifname, d[6:12].hex(":"), what, flush=True)
`;

function linksIn(netns: string): { ifname: string; address?: string }[] {
  const r = spawnSync("ip", ["-n", netns, "-j", "link", "show"], { encoding: "utf8" });
  return JSON.parse(r.stdout || "[]") as { ifname: string; address?: string }[];
}
const macsIn = (netns: string): string[] => linksIn(netns).flatMap((l) => (l.address ? [l.address] : []));

describe("linux data plane: the testbed's switching is silent", { skip }, () => {
  const h = suiteHarness();

  test("on a LAN, an emulated link and the infranet, every frame a node receives comes from a node or the infrapod", async () => {
    const mzid = h.mzid("quiet");
    const xp = experiment(
      "quiet",
      [
        node("x", [["10.9.0.1/24"], ["10.9.1.1/24"]]),
        node("y", [["10.9.0.2/24"]]),
        node("z", [["10.9.0.3/24"]]),
        node("w", [["10.9.1.2/24"]]),
      ],
      [
        link("lan", [
          ["x", 0],
          ["y", 0],
          ["z", 0],
        ]),
        link(
          "xw",
          [
            ["x", 1],
            ["w", 0],
          ],
          [{ prop: "latency", op: "==", value: 5_000_000 }],
        ),
      ],
    );
    await h.dp.materialize(localPlan(xp, mzid));
    const n = namesOf(prefixOf(mzid));
    // Right after bring-up, when a port's IPv6 would announce itself (router solicitations repeat every 4 s).
    const sniff = spawnSync("ip", ["netns", "exec", n.node("x"), "python3", "-c", SNIFF, "6", "eth0", "eth1", "eth2"], {
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(sniff.status, 0, sniff.stderr);
    const nodes = new Set(["x", "y", "z", "w"].flatMap((x) => macsIn(n.node(x))));
    const ibr = macsIn(n.infrapod);
    // Whose a foreign frame is, to say so.
    const owner = new Map(
      [n.infrapod, n.xpnet, n.emulator].flatMap((ns) => linksIn(ns).map((l) => [l.address, `${ns} ${l.ifname}`])),
    );
    const foreign = sniff.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split(" "))
      .filter(([ifname, src]) => !nodes.has(src ?? "") && !(ifname === "eth0" && ibr.includes(src ?? "")))
      .map((f) => `${f.join(" ")} from ${owner.get(f[1]) ?? "nobody known"}`);
    assert.deepEqual(foreign, [], "frames from the testbed's own ports or bridges (interface, source MAC, ethertype)");
    await h.dp.dematerialize(mzid);
  });
});
