/**
 * Static analysis of an experiment: is it structurally sound, are its
 * addresses well formed and consistent, can its constraints be satisfied at
 * all? Each finding is a Diagnostic with a path into the XIR; the compiler maps
 * paths to the user's source lines.
 */
import {
  type Constraint,
  contradictions,
  describeConstraint,
  type Element,
  type Experiment,
  KIND_PROPS,
  NODE_NAME_RE,
  nearest,
  PROFILE_KINDS,
  PROPERTIES,
  possibleKinds,
  type Scalar,
} from "@merge/xir";
import { cidrProblem, formatCidr, formatIPv4, network, parseCidr, parseIPv4, parsePrefix, size } from "@merge/xir/ipv4";
import type { Diagnostic } from "./diagnostics.ts";
import { canonicalImage, imageNames, KNOWN_IMAGES } from "./images.ts";
import { components, type Topology } from "./topology.ts";

const MAX_LISTED = 8;

export function analyze(x: Experiment, t: Topology): Diagnostic[] {
  const out: Diagnostic[] = [];
  const error = (code: string, message: string, path: string) => out.push({ severity: "error", code, message, path });
  const warn = (code: string, message: string, path: string) => out.push({ severity: "warning", code, message, path });

  if (x.nodes.length === 0) error("empty-experiment", "the experiment has no nodes", "");

  // Names
  const firstNode = new Map<string, number>();
  x.nodes.forEach((n, i) => {
    if (!NODE_NAME_RE.test(n.name)) {
      // Hostnames and namespaces are named after nodes: say so now, not at materialization.
      error(
        "bad-node-name",
        `node name ${JSON.stringify(n.name)} cannot be a hostname; use letters, digits, '-', '_' or '.', starting with a letter or digit, at most 63 characters`,
        `nodes[${i}]`,
      );
    }
    const first = firstNode.get(n.name);
    if (first === undefined) firstNode.set(n.name, i);
    else error("duplicate-node", `duplicate node name "${n.name}" (also nodes[${first}])`, `nodes[${i}]`);
  });
  // Endpoints name nodes, so with duplicate names the structure cannot be read.
  if (out.length) return out;
  const firstLink = new Map<string, number>();
  x.links.forEach((l, i) => {
    const first = firstLink.get(l.name);
    if (first === undefined) firstLink.set(l.name, i);
    else error("duplicate-link", `duplicate link name "${l.name}" (also links[${first}])`, `links[${i}]`);
  });

  // Link structure
  const bound = new Int32Array(t.socketLink.length).fill(-1);
  x.links.forEach((l, i) => {
    if (l.endpoints.length === 0) error("empty-link", `link ${l.name} has no endpoints`, `links[${i}]`);
    else if (l.endpoints.length === 1) {
      error(
        "single-endpoint-link",
        `link ${l.name} has a single endpoint (${l.endpoints[0]?.node}); a link joins two or more nodes`,
        `links[${i}]`,
      );
    }
    l.endpoints.forEach((ep, k) => {
      const n = t.nodeIndex.get(ep.node);
      const path = `links[${i}].endpoints[${k}]`;
      if (n === undefined) {
        error("unknown-endpoint", `link ${l.name} names node "${ep.node}", which does not exist`, path);
        return;
      }
      const count = (t.socketBase[n + 1] as number) - (t.socketBase[n] as number);
      if (ep.socket >= count) {
        error(
          "unknown-endpoint",
          `link ${l.name} names socket ${ep.socket} of node ${ep.node}, which has ${count} socket(s)`,
          path,
        );
        return;
      }
      const slot = (t.socketBase[n] as number) + ep.socket;
      const other = bound[slot] as number;
      if (other !== -1) {
        error(
          "socket-reused",
          `socket ${ep.socket} of node ${ep.node} is bound to both link ${x.links[other]?.name} and link ${l.name}`,
          path,
        );
      } else bound[slot] = i;
    });
  });
  // A direction of a link is named by the node it leads to (a socket's rx.*), so a node has one socket per link.
  x.links.forEach((l, i) => {
    const seen = new Map<string, number>();
    l.endpoints.forEach((ep, k) => {
      const first = seen.get(ep.node);
      if (first === undefined) seen.set(ep.node, ep.socket);
      else {
        error(
          "node-twice-on-link",
          `link ${l.name} joins node ${ep.node} twice (sockets ${first} and ${ep.socket}); a node has one socket on a link, since a link's directions are named by node`,
          `links[${i}].endpoints[${k}]`,
        );
      }
    });
  });
  x.nodes.forEach((n, i) => {
    n.sockets.forEach((s, j) => {
      if (s.index !== j)
        error(
          "socket-index",
          `socket ${j} of node ${n.name} says its index is ${s.index}`,
          `nodes[${i}].sockets[${j}]`,
        );
      if (bound[(t.socketBase[i] as number) + j] === -1) {
        warn("unbound-socket", `socket ${j} of node ${n.name} is not bound to any link`, `nodes[${i}].sockets[${j}]`);
      }
    });
  });

  // Islands. A node with no experiment links at all (say a monitor reached
  // over the infranet) is allowed; linked nodes must form one network.
  if (x.nodes.length > 1) {
    const { of, count } = components(t, x.nodes.length);
    const linkless: string[] = [];
    const islands = new Map<number, string[]>();
    x.nodes.forEach((n, i) => {
      if ((t.nodeStart[i + 1] as number) === (t.nodeStart[i] as number)) linkless.push(n.name);
      else {
        const c = of[i] as number;
        // Push, not a copy per node: a 20,000-node LAN took 13 s here.
        const island = islands.get(c);
        if (island) island.push(n.name);
        else islands.set(c, [n.name]);
      }
    });
    if (linkless.length > 0) {
      warn(
        "linkless",
        `${linkless.length === 1 ? "node" : `${linkless.length} nodes`} ${list(linkless)} ${linkless.length === 1 ? "has" : "have"} no experiment links: reachable over the infranet only`,
        linkless.length === 1 ? `nodes[${x.nodes.findIndex((n) => n.name === linkless[0])}]` : "",
      );
    }
    if (islands.size > 1 && count > 1) {
      const all = [...islands.values()];
      const shown = all.slice(0, MAX_LISTED).map((isl) => `{${list(isl)}}`);
      const more = all.length > MAX_LISTED ? `, and ${all.length - MAX_LISTED} more` : "";
      error(
        "islanded",
        `the experiment is islanded: ${all.length} islands that no link joins: ${shown.join(", ")}${more}; connect them (islanded experiments are not supported; a node with no links at all is allowed)`,
        "",
      );
    }
  }

  checkAddresses(x, t, error);
  checkRoutes(x, error);

  // Routing needs an address on every socket it routes through.
  if (x.parameters.routing === "static" && x.parameters.addressing !== "ipv4") {
    x.nodes.forEach((n, i) => {
      n.sockets.forEach((s, j) => {
        if (s.addrs.length === 0 && bound[(t.socketBase[i] as number) + j] !== -1) {
          error(
            "routing-needs-addresses",
            `static routing needs an address on socket ${j} of node ${n.name}; give it one or add addressing.ipv4`,
            `nodes[${i}].sockets[${j}]`,
          );
        }
      });
    });
  }

  // Constraints, properties, images
  const unknownImages = new Map<string, string[]>();
  const firstUse = new Map<string, number>();
  x.nodes.forEach((n, i) => {
    const before = out.length;
    checkConstraints(n.constraints, "node", `nodes[${i}]`, `node ${n.name}`, out);
    n.sockets.forEach((s, j) => {
      checkConstraints(s.constraints, "socket", `nodes[${i}].sockets[${j}]`, `socket ${j} of node ${n.name}`, out);
    });
    if (!out.slice(before).some((d) => d.severity === "error")) checkKind(n, i, error);
    if (n.image !== undefined && canonicalImage(n.image) === undefined) {
      const users = unknownImages.get(n.image);
      if (users) users.push(n.name);
      else unknownImages.set(n.image, [n.name]);
      if (!users) firstUse.set(n.image, i);
    }
  });
  // One warning per unknown image, however many nodes use it.
  for (const [name, users] of unknownImages) {
    const near = nearest(name, imageNames());
    const who = users.length === 1 ? `node ${users[0]}` : `${users.length} nodes (${list(users)})`;
    warn(
      "unknown-image",
      `${who}: unknown image "${name}"${near ? ` (did you mean "${near}"?)` : ""}; known images: ${KNOWN_IMAGES.join(", ")} (and aliases such as ubuntu:2204, debian:12)`,
      `nodes[${firstUse.get(name)}].image`,
    );
  }
  x.links.forEach((l, i) => {
    checkConstraints(l.constraints, "link", `links[${i}]`, `link ${l.name}`, out);
  });
  warnIngress(x, warn);
  return out;
}

/**
 * Published models expose ports (`viewer.ingress(http, 8080)`); the XIR keeps
 * them, but no facility here materializes an ingress yet, so say so once
 * rather than let the port silently stay inside the experiment.
 */
function warnIngress(x: Experiment, warn: Report): void {
  const asked = x.nodes.flatMap((n, i) => (n.ingress ?? []).map((g) => ({ node: n.name, i, ...g })));
  const first = asked[0];
  if (!first) return;
  const ports = asked.map((g) => `${g.node} ${g.protocol}:${g.port}`);
  warn(
    "ingress-not-provided",
    `ingress asked for (${list(ports)}), but no facility provides ingresses yet: the model keeps them, and the ports are reached only from inside the experiment (its nodes and infranet)`,
    `nodes[${first.i}]`,
  );
}

type Report = (code: string, message: string, path: string) => void;

/**
 * Some kind of node (bare metal, VM, container) must satisfy the node's
 * `metal`/`virt`/`virt.kind` constraints and give every NIC model its sockets
 * ask for: a VM on `metal == true`, or `nic("virtio")` on a container, is refused.
 */
function checkKind(n: Experiment["nodes"][number], i: number, error: Report): void {
  const kindAt = n.constraints.findLastIndex((c) => KIND_PROPS.has(c.prop) || c.prop in PROFILE_KINDS);
  const nicAt = n.sockets.findIndex((s) => s.constraints.some((c) => c.prop === "port.model"));
  if (kindAt < 0 && nicAt < 0) return;
  const { kinds, excluded } = possibleKinds(
    n.constraints,
    n.sockets.map((s) => s.constraints),
  );
  if (kinds.length) return;
  const path =
    kindAt >= 0
      ? `nodes[${i}].constraints[${kindAt}]`
      : `nodes[${i}].sockets[${nicAt}].constraints[${n.sockets[nicAt]!.constraints.findIndex((c) => c.prop === "port.model")}]`;
  error(
    "kind-contradiction",
    `node ${n.name}: no kind of node satisfies its constraints: ${excluded.map((e) => `${e.kind}: ${e.why}`).join("; ")}`,
    path,
  );
}

function checkAddresses(x: Experiment, t: Topology, error: Report): void {
  // Well-formedness and duplicates
  const owner = new Map<number, string>();
  x.nodes.forEach((n, i) => {
    n.sockets.forEach((s, j) => {
      s.addrs.forEach((a, k) => {
        const path = `nodes[${i}].sockets[${j}].addrs[${k}]`;
        const problem = cidrProblem(a);
        if (problem) {
          error("malformed-address", `node ${n.name}: malformed address: ${problem}`, path);
          return;
        }
        const c = parseCidr(a);
        if (!c) return;
        const who = `node ${n.name} socket ${j}`;
        const prev = owner.get(c.addr);
        if (prev !== undefined) {
          error("duplicate-address", `duplicate address ${formatIPv4(c.addr)}: ${who} and ${prev}`, path);
        } else owner.set(c.addr, who);
      });
    });
  });

  // One subnet per link, and no two links' subnets overlapping
  const spans: { first: number; last: number; link: number; text: string }[] = [];
  x.links.forEach((l, i) => {
    const subnets = new Map<string, { first: number; prefix: number; who: string[] }>();
    for (let k = t.linkStart[i] as number; k < (t.linkStart[i + 1] as number); k++) {
      const n = t.endNode[k] as number;
      if (n < 0) continue;
      const node = x.nodes[n];
      const s = node?.sockets[t.endSocket[k] as number];
      if (!node || !s) continue;
      for (const a of s.addrs) {
        const c = parseCidr(a);
        if (!c) continue;
        const first = network(c.addr, c.prefix);
        const key = formatCidr(first, c.prefix);
        const seen = subnets.get(key);
        if (seen) seen.who.push(`${node.name}:${a}`);
        else subnets.set(key, { first, prefix: c.prefix, who: [`${node.name}:${a}`] });
      }
    }
    if (subnets.size > 1) {
      const parts = [...subnets].map(([net, v]) => `${net} (${list(v.who)})`);
      error(
        "subnet-mismatch",
        `link ${l.name}: its sockets are in different subnets: ${parts.join(" vs ")}; every socket on a link shares one subnet`,
        `links[${i}]`,
      );
    }
    for (const [text, v] of subnets) spans.push({ first: v.first, last: v.first + size(v.prefix) - 1, link: i, text });
  });
  spans.sort((a, b) => a.first - b.first || b.last - a.last);
  let widest: (typeof spans)[number] | undefined;
  for (const s of spans) {
    if (widest && s.first <= widest.last && s.link !== widest.link) {
      error(
        "subnet-overlap",
        `link ${x.links[s.link]?.name} uses subnet ${s.text}, which overlaps subnet ${widest.text} of link ${x.links[widest.link]?.name}`,
        `links[${s.link}]`,
      );
    }
    if (!widest || s.last > widest.last) widest = s;
  }
}

/** Routes the user wrote: a real prefix, an existing socket, a gateway on that socket's subnet. */
function checkRoutes(x: Experiment, error: Report): void {
  x.nodes.forEach((n, i) => {
    n.routes?.forEach((r, j) => {
      const path = `nodes[${i}].routes[${j}]`;
      const dest = parsePrefix(r.dest);
      if (!dest) {
        error("bad-route", `node ${n.name}: route destination "${r.dest}" is not a prefix like 10.1.0.0/16`, path);
        return;
      }
      if (network(dest.addr, dest.prefix) !== dest.addr) {
        error(
          "bad-route",
          `node ${n.name}: route destination ${r.dest} has host bits set; the prefix is ${formatCidr(network(dest.addr, dest.prefix), dest.prefix)}`,
          path,
        );
      }
      const socket = n.sockets[r.socket];
      if (!socket) {
        error(
          "bad-route",
          `node ${n.name}: route to ${r.dest} leaves through socket ${r.socket}, which does not exist`,
          path,
        );
        return;
      }
      const gw = parseIPv4(r.gateway);
      const subnets = socket.addrs.map(parseCidr).filter((c): c is NonNullable<typeof c> => c !== undefined);
      if (gw === undefined) {
        error("bad-route", `node ${n.name}: route gateway "${r.gateway}" is not an IPv4 address`, path);
      } else if (subnets.length && !subnets.some((c) => network(gw, c.prefix) === network(c.addr, c.prefix))) {
        error(
          "bad-route",
          `node ${n.name}: route to ${r.dest} via ${r.gateway}: the gateway is not on socket ${r.socket}'s subnet (${socket.addrs.join(", ")})`,
          path,
        );
      }
    });
  });
}

function checkConstraints(
  constraints: readonly Constraint[],
  element: Element,
  path: string,
  what: string,
  out: Diagnostic[],
): void {
  const sound: Constraint[] = [];
  constraints.forEach((c, j) => {
    const at = `${path}.constraints[${j}]`;
    const problem = constraintProblem(c, element);
    if (problem)
      out.push({ severity: problem.severity, code: problem.code, message: `${what}: ${problem.message}`, path: at });
    if (!problem || problem.severity === "warning") sound.push(c);
  });
  if (sound.length < 2) return;
  for (const group of contradictions(sound)) {
    const j = constraints.indexOf(group[group.length - 1] as Constraint);
    out.push({
      severity: "error",
      code: "contradiction",
      message: `${what}: contradictory constraints, no value satisfies all of: ${group.map(describeConstraint).join(", ")}`,
      path: `${path}.constraints[${j}]`,
    });
  }
}

function constraintProblem(
  c: Constraint,
  element: Element,
): { severity: "error" | "warning"; code: string; message: string } | undefined {
  const spec = PROPERTIES[c.prop];
  if (!spec) {
    const near = nearest(
      c.prop,
      Object.keys(PROPERTIES).filter((p) => PROPERTIES[p]?.element === element),
    );
    return {
      severity: "warning",
      code: "unknown-property",
      message: `unknown property "${c.prop}"${near ? ` (did you mean "${near}"?)` : ""}; the realization engine will match it only against facilities that define it`,
    };
  }
  if (spec.element !== element) {
    return {
      severity: "error",
      code: "wrong-element",
      message: `${c.prop} is a ${spec.element} property; it cannot constrain a ${element}`,
    };
  }
  const values: Scalar[] = Array.isArray(c.value) ? c.value : [c.value];
  if (c.op === "in" && !Array.isArray(c.value)) {
    return { severity: "error", code: "wrong-type", message: `${c.prop} in ...: "in" needs a list of values` };
  }
  if (c.op !== "in" && Array.isArray(c.value)) {
    return { severity: "error", code: "wrong-type", message: `${c.prop} ${c.op}: a list is only allowed with "in"` };
  }
  if (c.op === "in" && values.length === 0) {
    return { severity: "error", code: "bad-value", message: `${c.prop} in []: no value can be in an empty list` };
  }
  for (const v of values) {
    if (typeof v !== spec.type) {
      return {
        severity: "error",
        code: "wrong-type",
        message: `${c.prop} must be a ${spec.type}${spec.unit ? ` (${spec.unit})` : ""}, got ${typeof v} ${JSON.stringify(v)}`,
      };
    }
    if (typeof v === "number") {
      if (v < 0) return { severity: "error", code: "bad-value", message: `${c.prop} cannot be negative (${v})` };
      if (spec.integer && !Number.isInteger(v)) {
        return { severity: "error", code: "bad-value", message: `${c.prop} must be a whole number, got ${v}` };
      }
      if (spec.unit === "fraction" && v > 1) {
        return { severity: "error", code: "bad-value", message: `${c.prop} is a fraction from 0 to 1, got ${v}` };
      }
      if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max)) {
        return {
          severity: "error",
          code: "bad-value",
          message: `${c.prop} is from ${spec.min ?? 0} to ${spec.max ?? "any"}, got ${v}`,
        };
      }
      if (c.prop === "layer" && (v < 1 || v > 3)) {
        return { severity: "error", code: "bad-value", message: `layer must be 1, 2 or 3, got ${v}` };
      }
    }
    if (typeof v === "string" && spec.allowed && !spec.allowed.includes(v)) {
      return {
        severity: "error",
        code: "bad-value",
        message: `${c.prop} "${v}" is not one of ${spec.allowed.join(", ")}`,
      };
    }
  }
  if (spec.ops && !spec.ops.includes(c.op)) {
    return {
      severity: "error",
      code: "wrong-op",
      message: `${c.prop} ${c.op}: ${c.prop} is a value the node is given; set it with ${spec.ops.join(" or ")}`,
    };
  }
  if (spec.type === "boolean" && c.op !== "==" && c.op !== "!=" && c.op !== "in") {
    return { severity: "error", code: "wrong-type", message: `${c.prop} is true or false; compare it with == or !=` };
  }
  return undefined;
}

function list(names: readonly string[]): string {
  return names.length > MAX_LISTED
    ? `${names.slice(0, MAX_LISTED).join(", ")}, ... ${names.length - MAX_LISTED} more`
    : names.join(", ");
}
