/**
 * Python models that fail: each failure is a ModelError naming the line of the
 * user's script and what to write instead; and the sandbox holds (time,
 * memory, network, files, processes, working directory).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { availableConfinement, CONFINED_WORK, SCRATCH_PREFIX } from "../src/confinement.ts";
import { ModelError } from "../src/diagnostics.ts";
import { PYTHON_DIR, type PythonRunOptions, runPythonSource, type Sandbox } from "../src/python.ts";

const HEAD = "from mergexp import *\nnet = Network('x')\n";

/** Runs a script expected to fail; returns its first (error) diagnostic. */
async function failure(source: string, opts: PythonRunOptions = {}, file = "model.py") {
  try {
    await runPythonSource(source, file, opts);
  } catch (e) {
    assert.ok(e instanceof ModelError, `expected a ModelError, got ${e}`);
    const d = e.diagnostics[0];
    assert.ok(d);
    assert.equal(d.severity, "error");
    return { ...d, text: e.message };
  }
  assert.fail("the script compiled, but it should have failed");
}

describe("python model errors name the user's line", () => {
  test("a syntax error", async () => {
    const d = await failure(`${HEAD}a = net.node('a'\nexperiment(net)\n`);
    assert.equal(d.code, "python-syntax");
    assert.match(d.message, /SyntaxError/);
    assert.equal(d.location?.file, "model.py");
    assert.equal(d.location?.line, 3);
    assert.match(d.text, /^model\.py:3:\d+: error: SyntaxError/);
  });

  test("a property used as a namespace: what it is and how to compare it (v0's memory is memory.capacity)", async () => {
    const v0 = await failure(
      "import mergexp as mx\nfrom mergexp.machine import memory\nfrom mergexp.unit import gb\n" +
        "net = mx.Topology('x')\na = net.device('a', memory.capacity >= gb(2))\nmx.experiment(net)\n",
    );
    assert.equal(v0.location?.line, 5);
    assert.match(v0.message, /'memory' is already the property memory\.capacity .*e\.g\. memory >= gb\(8\)/);
    const v1 = await failure(`${HEAD}a = net.node('a', proc.cores.count >= 2)\nexperiment(net)\n`);
    assert.match(v1.message, /proc\.cores is a property, it has no 'count': compare it, e\.g\. proc\.cores >= 4/);
  });

  test("an exception in the script, also from inside a function", async () => {
    const d = await failure(
      `${HEAD}def make(i):\n    return net.node('n%d' % (10 // i))\nnodes = [make(i) for i in range(3)]\n`,
    );
    assert.equal(d.code, "python-exception");
    assert.match(d.message, /ZeroDivisionError: integer division or modulo by zero/);
    assert.equal(d.location?.line, 4, "the innermost line of the user's script");
  });

  test("a v0 name a v1 script did not import says where it comes from", async () => {
    const cores = await failure(`${HEAD}a = net.node('a', cores > 2)\n`);
    assert.equal(cores.code, "python-exception");
    assert.match(cores.message, /name 'cores' is not defined \(cores is the mergexp v0 API; in v1 use proc\.cores/);
    assert.equal(cores.location?.line, 3);
  });

  test("proc compared itself is still refused: v0 had no proc", async () => {
    const d = await failure(`${HEAD}a = net.node('a', proc >= 2)\n`);
    assert.match(d.message, /proc is not a property in mergexp v1; use proc\.cores/);
  });

  test("bad ip4 addresses", async () => {
    const bad = await failure(`${HEAD}a = ip4('10.0.0.1/24')\nb = ip4('10.0.0.256/24')\n`);
    assert.equal(bad.code, "mergexp-address");
    assert.match(bad.message, /'10\.0\.0\.256\/24' is not a valid IPv4 address/);
    assert.equal(bad.location?.line, 4);

    const noPrefix = await failure(`${HEAD}a = ip4('10.0.0.1')\n`);
    assert.match(noPrefix.message, /no prefix length.*'10\.0\.0\.1\/24'/);

    const network = await failure(`${HEAD}a = ip4('10.0.0.0/24')\n`);
    assert.match(network.message, /network address of 10\.0\.0\.0\/24; pick a host address, e\.g\. 10\.0\.0\.1\/24/);

    const assigned = await failure(
      `${HEAD}a, b = net.node('a'), net.node('b')\nl = net.connect([a, b])\nl[a].socket.addrs = ['10.0.0.1/33']\n`,
    );
    assert.equal(assigned.code, "mergexp-address");
    assert.equal(assigned.location?.line, 5);

    const appended = await failure(
      `${HEAD}a, b = net.node('a'), net.node('b')\nl = net.connect([a, b])\nl[a].socket.addrs.append('nonsense')\nexperiment(net)\n`,
    );
    assert.equal(appended.code, "mergexp-address");
    assert.match(appended.message, /'nonsense' has no prefix length/);
    assert.equal(appended.location?.line, 4, "located at the socket's link");
  });

  test("wrong units", async () => {
    const latency = await failure(
      `${HEAD}a, b = net.node('a'), net.node('b')\nnet.connect([a, b], latency == gb(1))\n`,
    );
    assert.equal(latency.code, "mergexp-unit");
    assert.match(
      latency.message,
      /latency == 1 GiB: a duration was expected, not a size; write e\.g\. latency == ms\(10\)/,
    );
    assert.equal(latency.location?.line, 4);

    const cores = await failure(`${HEAD}a = net.node('a', proc.cores == gb(8))\n`);
    assert.equal(cores.code, "mergexp-unit");
    assert.match(cores.message, /proc\.cores == 8 GiB: a plain count was expected, not a size/);

    const capacity = await failure(`${HEAD}a = net.node('a',\n    memory.capacity >= mbps(100))\n`);
    assert.equal(capacity.code, "mergexp-unit");
    assert.equal(capacity.location?.line, 4);

    const negative = await failure(`${HEAD}x = ms(-1)\n`);
    assert.match(negative.message, /ms\(-1\): expected a finite, non-negative number/);
  });

  test("unknown constraint values and misplaced constraints", async () => {
    const routing = await failure("from mergexp import *\nnet = Network('x', routing == 'ospf')\n");
    assert.equal(routing.code, "mergexp-value");
    assert.match(routing.message, /routing == 'ospf': unknown value; valid values are static/);
    assert.equal(routing.location?.line, 2);

    const nic = await failure(
      `${HEAD}a, b = net.node('a'), net.node('b')\nnet.connect([a, b], port.model == 'tulip')\n`,
    );
    assert.match(nic.message, /port\.model == 'tulip': unknown value; valid values are virtio, e1000, e1000e/);

    const loss = await failure(`${HEAD}a, b = net.node('a'), net.node('b')\nnet.connect([a, b], loss == 5)\n`);
    assert.match(loss.message, /loss is a fraction between 0 and 1 \(5% is 0\.05\)/);

    const metal = await failure(`${HEAD}a = net.node('a', metal == 'yes')\n`);
    assert.match(metal.message, /metal == 'yes': expected True or False/);

    const image = await failure(`${HEAD}a = net.node('a', image != '2004')\n`);
    assert.match(image.message, /image only accepts ==/);

    const misplaced = await failure(`${HEAD}a = net.node('a', capacity == mbps(100))\n`);
    assert.equal(misplaced.code, "mergexp-element");
    assert.match(misplaced.message, /capacity == 100000000 is a link constraint; give it to net\.connect/);

    const chained = await failure(`${HEAD}a = net.node('a', 2 < proc.cores < 8)\n`);
    assert.match(chained.message, /for a range pass two constraints/);

    const ingress = await failure(`${HEAD}a = net.node('a')\na.ingress('ftp', 21)\n`);
    assert.match(ingress.message, /unknown protocol; valid are tcp, udp, http, https/);
  });

  test("topology mistakes", async () => {
    const dup = await failure(`${HEAD}a = net.node('a')\nb = net.node('a')\n`);
    assert.equal(dup.code, "mergexp-topology");
    assert.match(dup.message, /a node named 'a' already exists \(made at line 3\)/);
    assert.equal(dup.location?.line, 4);

    const foreign = await failure(
      `${HEAD}other = Network('y')\na = net.node('a')\nz = other.node('z')\nnet.connect([a, z])\n`,
    );
    assert.match(foreign.message, /node z belongs to another Network \(y\)/);

    const notOn = await failure(
      `${HEAD}a, b, c = net.node('a'), net.node('b'), net.node('c')\nl = net.connect([a, b])\nl[c].socket.addrs = ip4('10.0.0.1/24')\n`,
    );
    assert.match(notOn.message, /link\[c\]: that node is not on this link \(it joins a, b\)/);
    assert.equal(notOn.location?.line, 5);
  });

  test("constraints as keyword arguments say how to write them", async () => {
    const net = await failure("from mergexp import *\nnet = Network('loopix', addressing='ipv4', routing='static')\n");
    assert.equal(net.code, "mergexp-value");
    assert.equal(net.location?.line, 2);
    assert.match(
      net.message,
      /constraints are comparisons, not keyword arguments; write addressing == ipv4 instead of addressing='ipv4'/,
    );
    const node = await failure(`${HEAD}a = net.node('a', cores=4)\n`);
    assert.match(node.message, /net\.node\('a', \.\.\.\): .* write cores == 4 instead of cores=4/);
    const link = await failure(`${HEAD}a, b = net.node('a'), net.node('b')\nnet.connect([a, b], latency='10ms')\n`);
    assert.match(link.message, /write latency == '10ms' instead of latency='10ms'/);
    assert.equal(link.location?.line, 4);
    // A bare value where a constraint belongs: the example is one the element takes.
    const bare = await failure("from mergexp import *\nnet = Network('x', 'ipv4')\n");
    assert.match(
      bare.message,
      /Network\('x', \.\.\.\): expected constraints like addressing == ipv4, got 'ipv4' \(str\)/,
    );
    const onLink = await failure(`${HEAD}a, b = net.node('a'), net.node('b')\nnet.connect([a, b], 5)\n`);
    assert.match(onLink.message, /expected constraints like latency == ms\(10\), got 5 \(int\)/);
  });

  test("what a model does not do on a node says where it is done", async () => {
    const ip = await failure(`${HEAD}s = net.node('SIGNAL')\ns.add_ip('192.168.1.1/24')\n`);
    assert.equal(ip.location?.line, 4);
    assert.match(ip.message, /no attribute 'add_ip'.*link\[node\]\.socket\.addrs = ip4\('10\.0\.0\.1\/24'\)/);
    const run = await failure(`${HEAD}s = net.node('s')\ns.execute('./server -v')\n`);
    assert.match(run.message, /no attribute 'execute'.*once it is materialized \(mrg exec NODE RID -- COMMAND\)/);
  });

  test("imports that never were mergexp modules say so", async () => {
    const alias = await failure("import mergexp as mx\nfrom mx.unit import gb\n");
    assert.equal(alias.location?.line, 2);
    assert.match(
      alias.message,
      /No module named 'mx' \(mx is the script's name for mergexp, not a module.*'from mergexp\.unit import gb'/,
    );
    const proto = await failure("import mergexp as mx\nfrom mergexp.stochastic import normal\n");
    assert.match(proto.message, /stochastic and mobility models were never part of mergexp/);
    const other = await failure("import mergexp.tools\n");
    assert.match(other.message, /mergexp's modules are mergexp itself.*mergexp\.unit, mergexp\.net, mergexp\.machine/);
    // A v0 script that uses a name it did not import: the v0 module that has it.
    const v0 = await failure(
      "import mergexp as mx\nfrom mergexp.net import routing, static\nnet = mx.Topology('vtc', routing == static, addressing == ipv4)\n",
    );
    assert.equal(v0.location?.line, 3);
    assert.match(
      v0.message,
      /name 'addressing' is not defined \(import it: 'from mergexp\.net import addressing', or 'from mergexp import \*'\)/,
    );
    const foreign = await failure("import numpy\n");
    assert.equal(foreign.message, "ModuleNotFoundError: No module named 'numpy'");
  });

  test("a script that never calls experiment(net)", async () => {
    const d = await failure(`${HEAD}a = net.node('a')\n`);
    assert.equal(d.code, "mergexp-no-experiment");
    assert.match(d.message, /never called experiment\(net\).*experiment\(net\)/);
  });

  test("sys.exit with an error code", async () => {
    const d = await failure(`${HEAD}import sys\nsys.exit(3)\n`);
    assert.equal(d.code, "python-exit");
    assert.equal(d.location?.line, 4);
  });
});

describe("python sandbox", () => {
  test("an endless loop times out, naming the line it was on", async () => {
    const started = Date.now();
    const d = await failure(`${HEAD}i = 0\nwhile True:\n    i += 1\n`, { timeoutMs: 3000 });
    assert.equal(d.code, "python-timeout");
    assert.match(d.message, /did not finish within 3 s/);
    assert.ok(d.location && [4, 5].includes(d.location.line), `line ${d.location?.line}`);
    assert.ok(Date.now() - started < 10_000);
  });

  test("a script that ignores the interrupt is killed", async () => {
    const source = `${HEAD}while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass\n`;
    const d = await failure(source, { timeoutMs: 500 });
    assert.equal(d.code, "python-timeout");
  });

  test("memory is limited", async () => {
    const d = await failure(`${HEAD}hog = bytearray(1024 * 1024 * 1024)\n`, { memoryMb: 128 });
    assert.equal(d.code, "python-memory");
    assert.match(d.message, /MemoryError.*limit 128 MiB/);
    assert.equal(d.location?.line, 3);
  });

  const confined = availableConfinement();
  const sandboxes: Sandbox[] = confined === "none" ? ["hooks"] : [confined, "hooks"];
  for (const sandbox of sandboxes) {
    test(`no network (${sandbox}): connecting to a listening 127.0.0.1 port fails`, async () => {
      let connections = 0;
      const server = createServer((s) => {
        connections++;
        s.destroy();
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const port = (server.address() as { port: number }).port;
        const source = `import socket\ns = socket.create_connection(('127.0.0.1', ${port}), timeout=2)\n`;
        const d = await failure(source, { sandbox });
        assert.equal(d.location?.line, sandbox === "hooks" ? 1 : 2);
        assert.match(d.message, /network/);
        assert.equal(connections, 0);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    test(`no processes, no files outside the sandbox (${sandbox})`, async () => {
      const proc = await failure("import os\nos.system('true')\n", { sandbox });
      assert.equal(proc.code, "mergexp-sandbox");
      assert.equal(proc.location?.line, 2);
      const sub = await failure("import subprocess\nsubprocess.run(['true'])\n", { sandbox });
      assert.equal(sub.code, "mergexp-sandbox");
      const read = await failure("secret = open('/etc/hostname').read()\n", { sandbox });
      assert.equal(read.code, "mergexp-sandbox");
      assert.match(read.message, /may not read '\/etc\/hostname'/);
      const write = await failure("open('/tmp/mergexp-escape', 'w').write('x')\n", { sandbox });
      assert.match(write.message, /may write files only in their working directory/);
      assert.equal(existsSync("/tmp/mergexp-escape"), false);
      const ctypes = await failure("import ctypes\n", { sandbox });
      assert.equal(ctypes.code, "mergexp-sandbox");
      const limits = await failure("import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))\n", { sandbox });
      assert.equal(limits.code, "mergexp-sandbox");
      assert.equal(limits.location?.line, 2);
      const gc = await failure("import gc\nhooks = [o for o in gc.get_objects() if callable(o)]\n", { sandbox });
      assert.equal(gc.code, "mergexp-sandbox");
      const trace = await failure("import sys\nsys.settrace(lambda *a: None)\n", { sandbox });
      assert.equal(trace.code, "mergexp-sandbox");
    });

    // Published scripts start threads (a daemon "churning" nodes). Where the run
    // has a uid of its own (namespace) they may, under its task limit, and a
    // thread still running does not hold the run; elsewhere RLIMIT_NPROC 0
    // refuses them (root is not bound by it) and the error says why.
    test(`threads (${sandbox})`, async () => {
      const source = [
        "import threading, time",
        "from mergexp import *",
        "net = Network('threads')",
        "made = []",
        "worker = threading.Thread(target=lambda: made.append(net.node('from-a-thread')))",
        "worker.start()",
        "worker.join()",
        "def churn():",
        "    while True:",
        "        time.sleep(1)",
        "threading.Thread(target=churn).start()  # not a daemon: it never ends",
        "experiment(net)",
      ].join("\n");
      if (sandbox === "namespace" || process.getuid?.() === 0) {
        const r = await runPythonSource(source, "threads.py", { sandbox, timeoutMs: 20_000 });
        assert.deepEqual(
          r.experiment.nodes.map((n) => n.name),
          ["from-a-thread"],
        );
      } else {
        const d = await failure(source, { sandbox });
        assert.equal(d.location?.line, 6);
        assert.match(d.message, /can't start new thread \(this sandbox runs models without threads/);
      }
    });

    test(`a fresh working directory, removed afterwards (${sandbox})`, async () => {
      const marker = `scratch-${process.pid}-${Date.now()}.txt`;
      const source = [
        "import os",
        "from mergexp import *",
        `open('${marker}', 'w').write('kept only during the run')`,
        "net = Network('wd')",
        "net.node(os.getcwd())",
        "net.node('files-' + ','.join(sorted(os.listdir('.'))))",
        "net.node('uid-%d' % os.getuid())",
        "experiment(net)",
      ].join("\n");
      const r = await runPythonSource(source, "wd.py", { sandbox });
      assert.equal(r.sandbox, sandbox);
      const [cwd, files, uid] = r.experiment.nodes.map((n) => n.name);
      assert.equal(files, `files-${marker}`, "the directory was empty");
      if (sandbox === "namespace") {
        assert.equal(cwd, CONFINED_WORK, "the working directory, seen from the script's own root");
        assert.match(uid ?? "", /^uid-3\d{6}$/, "runs as a dedicated unprivileged uid");
      } else if (sandbox === "hooks") {
        assert.match(cwd ?? "", /\/merge-model-[^/]+\/work$/);
        assert.equal(existsSync(cwd as string), false, "the working directory is removed");
      }
      const left = readdirSync(tmpdir()).filter(
        (d) => d.startsWith(SCRATCH_PREFIX) && existsSync(join(tmpdir(), d, "work", marker)),
      );
      assert.deepEqual(left, [], "no run directory with the script's file remains");
    });
  }

  if (availableConfinement() === "namespace") {
    test("namespace: the script sees a root of its own (/usr, the package, its scratch), not the host's files", async (t) => {
      const repo = fileURLToPath(new URL("../../..", import.meta.url));
      const pkg = join(PYTHON_DIR, "mergexp", "__init__.py");
      // A host file in the temp directory (a checkout may itself live under /tmp, so not /tmp itself).
      const hostFile = join(tmpdir(), `merge-host-probe-${process.pid}`);
      writeFileSync(hostFile, "host");
      t.after(() => rmSync(hostFile, { force: true }));
      const paths = ["/etc/passwd", join(repo, "package.json"), "/root", hostFile, "/proc/self", "/usr/lib", pkg];
      const source = [
        "import os",
        "from mergexp import *",
        "net = Network('fs')",
        // os.path.exists is not audited: this is the mount namespace, not the hook.
        `for p in ${JSON.stringify(paths)}:`,
        "    net.node(('seen ' if os.path.exists(p) else 'hidden ') + p)",
        "experiment(net)",
      ].join("\n");
      const r = await runPythonSource(source, "fs.py", { sandbox: "namespace" });
      assert.deepEqual(
        r.experiment.nodes.map((n) => n.name),
        [
          "hidden /etc/passwd",
          `hidden ${join(repo, "package.json")}`,
          "hidden /root",
          `hidden ${hostFile}`,
          "hidden /proc/self",
          "seen /usr/lib",
          `seen ${pkg}`,
        ],
      );
    });
  }
});
