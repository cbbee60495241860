/**
 * Sessions into a VM node through its guest agent (native/mrg-agent.c): exec
 * with stdin streamed as it comes (stdout and stderr apart), several sessions
 * at once, the interactive shell on a pty in the guest (a terminal, job
 * control, window size) as the portal's shell path drives it, and a session
 * open across a power cycle ends (the guest restarted). One VM, one boot (TCG).
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import type { Constraint } from "@merge/xir";
import { LinuxBackend } from "../../src/linux/backend.ts";
import { prefixOf } from "../../src/linux/names.ts";
import { vmDir, vmPid } from "../../src/linux/vm.ts";
import { frame, openFrame, takePort } from "../../src/linux/vm-agent-wire.mjs";
import { type ExecChunk, type ShellInput, shellIn } from "../../src/node-ops.ts";
import { experiment, type Harness, harness, isClean, leftovers, localPlan, node, qemuSkip } from "./fixture.ts";

const c = (prop: string, value: Constraint["value"]): Constraint => ({ prop, op: "==", value });

/** Output of a child as it comes, and a wait for a pattern in it. */
function watch(s: NodeJS.ReadableStream | null) {
  let text = "";
  const waiters: (() => void)[] = [];
  s?.setEncoding("utf8");
  s?.on("data", (d: string) => {
    text += d;
    for (const w of waiters.splice(0)) w();
  });
  return {
    text: () => text,
    async until(re: RegExp, ms = 120_000): Promise<string> {
      const end = Date.now() + ms;
      while (!re.test(text)) {
        assert.ok(Date.now() < end, `no ${re} in ${ms} ms; got ${JSON.stringify(text)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 500);
        });
      }
      return text;
    },
  };
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.on("close", r)));

/** A writable queue of shell input, as the portal's WebSocket feeds `shellIn`. */
function inputQueue() {
  const items: ShellInput[] = [];
  let wake: () => void = () => {};
  let closed = false;
  return {
    push(m: ShellInput) {
      items.push(m);
      wake();
    },
    close() {
      closed = true;
      wake();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (items.length) yield items.shift()!;
        if (closed) return;
        await new Promise<void>((r) => {
          wake = r;
        });
      }
    },
  };
}

describe("linux data plane: sessions into a VM", { skip: qemuSkip(), timeout: 1_500_000 }, () => {
  let h: Harness;
  let mzid: string;
  before(async () => {
    h = await harness();
    mzid = h.mzid("vms");
    const v = node("v", []);
    v.constraints.push(c("virt.kind", "vm"), c("proc.cores", 1));
    await h.dp.materialize(localPlan(experiment("vms", [v], []), mzid));
  });
  after(async () => {
    if (mzid) await h?.dp.dematerialize(mzid);
    if (mzid) assert.ok(isClean(await leftovers(prefixOf(mzid), h.dataDir)));
    await h?.close();
  });

  test("exec streams stdin: the command answers a line before the next is sent; stderr apart; others run meanwhile", async () => {
    const child = h.dp.exec(mzid, "v", ["sh", "-c", "read a; echo got:$a; read b; echo err:$b >&2; exit 4"]);
    const out = watch(child.stdout);
    const err = watch(child.stderr);
    child.stdin?.write("one\n");
    // Answered while its stdin is still open: the input went in as it came, not at its end.
    await out.until(/got:one\n/);
    // Another session while this one waits for input (the VM has several agent ports).
    assert.equal((await h.dp.run(mzid, "v", ["hostname"])).stdout.trim(), "v");
    child.stdin?.write("two\n");
    assert.equal(await exited(child), 4);
    assert.equal(out.text(), "got:one\n");
    assert.equal(err.text(), "err:two\n");
    // The end of stdin is the command's: cat ends with it, its input whole (a 1 MB stream in frames).
    const cat = h.dp.exec(mzid, "v", ["sh", "-c", "wc -c"]);
    const counted = watch(cat.stdout);
    cat.stdin?.end(Buffer.alloc(1 << 20, 0x61));
    assert.equal(await exited(cat), 0);
    assert.equal(counted.text().trim(), String(1 << 20));
  });

  test("the shell gets a pty in the guest: a terminal, its window size (and a change of it), job control", async () => {
    const backend = LinuxBackend.over(h.dp);
    const input = inputQueue();
    const abort = new AbortController();
    const chunks = shellIn(backend, mzid, "v", { tty: true, size: { rows: 30, cols: 100 } }, input, abort.signal);
    let text = "";
    let code: number | undefined;
    const dec = new TextDecoder();
    const reading = (async () => {
      for await (const ch of chunks as AsyncIterable<ExecChunk>) {
        if ("stdout" in ch) text += dec.decode(ch.stdout);
        else if ("stderr" in ch) text += dec.decode(ch.stderr);
        else code = ch.exit;
      }
    })();
    const until = async (re: RegExp) => {
      const end = Date.now() + 120_000;
      while (!re.test(text)) {
        assert.ok(Date.now() < end, `no ${re}; got ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const send = (s: string) => input.push({ stdin: new TextEncoder().encode(s) });
    send("tty; stty size; echo T$((6*7))\r");
    await until(/T42/);
    assert.match(text, /\/dev\/pts\/\d+/);
    assert.match(text, /30 100/);
    input.push({ resize: { rows: 40, cols: 120 } });
    send("stty size; echo S$((6*7))\r");
    await until(/S42/);
    assert.match(text, /40 120/);
    // Job control: a job in the background, listed, brought back and stopped with ^C.
    send("sleep 300 &\r");
    send("jobs; echo J$((6*7))\r");
    await until(/J42/);
    assert.match(text, /\[1\]\+?\s+Running\s+sleep 300/);
    send("fg\r");
    await until(/sleep 300\r?\n/);
    await new Promise((r) => setTimeout(r, 1000));
    send("\x03");
    send("echo C$?$((6*7))\r");
    await until(/C13042/);
    send("exit 5\r");
    await reading;
    assert.equal(code, 5);
    input.close();
  });

  test("a port left by a session mid-frame, its command still writing, serves the next session cleanly", async () => {
    const dir = vmDir(h.dp.env, prefixOf(mzid), "v");
    for (let round = 0; round < 3; round++) {
      // A raw session without hello: a command that never stops writing, then half a stdin frame, then gone.
      const port = await takePort(dir, 10_000);
      const raw = connect(port.sock);
      raw.on("error", () => {});
      raw.write(openFrame("yes stale", false));
      raw.write(frame("I", Buffer.alloc(4000, 0x61)).subarray(0, 1000));
      await new Promise((r) => setTimeout(r, 300 * round));
      raw.destroy();
      port.release();
      // The next sessions take the same port at once: the guest's stale output and the remnant are not theirs.
      for (const word of ["fresh", "again"])
        assert.equal((await h.dp.run(mzid, "v", ["echo", word])).stdout, `${word}\n`);
    }
  });

  test("a session open across a power cycle ends (the guest restarted under it)", async () => {
    const prefix = prefixOf(mzid);
    const pid = vmPid(h.dp.env, prefix, "v");
    const child = h.dp.exec(mzid, "v", ["sh", "-c", "echo up; read x"]);
    const out = watch(child.stdout);
    const err = watch(child.stderr);
    await out.until(/up/);
    await h.dp.power(mzid, "v", "cycle");
    assert.equal(vmPid(h.dp.env, prefix, "v"), pid);
    assert.equal(await exited(child), 255);
    assert.match(err.text(), /guest agent: .*restarted/);
    assert.equal((await h.dp.run(mzid, "v", ["echo", "back"])).stdout.trim(), "back");
  });
});
