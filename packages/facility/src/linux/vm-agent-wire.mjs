// The host end of the guest agent's protocol (native/mrg-agent.c): frames
// `0xA5 TYPE LEN(u32 BE) PAYLOAD` over one of the VM's agent ports
// (`vm/agent-<n>.sock`, a virtio-serial port in the guest). A port carries one
// session at a time, so a session first takes the port's lock file
// (`agent-<n>.lock`, holding its process's pid and start time: a lock whose
// holder is gone is taken over). A session starts with a hello carrying a
// fresh id, and what the guest sent before echoing it is dropped: bytes of an
// earlier session on the port, late. A hello unanswered in HELLO_MS means a
// guest not up yet or a port in a bad state: the session tries another port,
// within the caller's wait. Plain JavaScript: vm-agent-client.mjs runs it
// without a TypeScript loader; vm.ts imports it (types in vm-agent-wire.d.mts).
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { connect } from "node:net";
import { basename, dirname, join } from "node:path";

/** How many agent ports a VM has: sessions at once (an open shell holds one). */
export const AGENT_PORTS = 8;
const MAGIC = 0xa5;
/** Stdin goes in frames of at most this many bytes. */
export const CHUNK = 65536;
/** The guest's frames are at most this long (its reads are 16 KB); longer is a stream out of step. */
const MAX_FRAME = 1 << 20;
/** How long a hello waits for its echo before the session tries another port. */
export const HELLO_MS = 5000;

export function frame(type, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(6);
  h[0] = MAGIC;
  h[1] = type.charCodeAt(0);
  h.writeUInt32BE(payload.length, 2);
  return Buffer.concat([h, payload]);
}

export function openFrame(script, tty, size) {
  const p = Buffer.alloc(5);
  p[0] = tty ? 1 : 0;
  p.writeUInt16BE(size?.rows ?? 0, 1);
  p.writeUInt16BE(size?.cols ?? 0, 3);
  return frame("O", Buffer.concat([p, Buffer.from(script)]));
}

export function sizeFrame(size) {
  const p = Buffer.alloc(4);
  p.writeUInt16BE(size.rows, 0);
  p.writeUInt16BE(size.cols, 2);
  return frame("W", p);
}

/** Splits the guest's byte stream into frames: `push` returns the whole ones so far. */
export class Decoder {
  buf = Buffer.alloc(0);
  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out = [];
    let at = 0;
    while (this.buf.length - at >= 6) {
      if (this.buf[at] !== MAGIC) {
        at++;
        continue;
      }
      const n = this.buf.readUInt32BE(at + 2);
      if (n > MAX_FRAME) throw new Error(`a frame of ${n} bytes (at most ${MAX_FRAME}): the stream is out of step`);
      if (this.buf.length - at < 6 + n) break;
      out.push({ type: String.fromCharCode(this.buf[at + 1]), payload: this.buf.subarray(at + 6, at + 6 + n) });
      at += 6 + n;
    }
    this.buf = this.buf.subarray(at);
    return out;
  }
}

/** The kernel's start time of a process (field 22 of its stat), to tell a live holder from a reused pid. */
function startTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

const me = `${process.pid} ${startTime(process.pid)}`;

function tryLock(path) {
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, me);
      closeSync(fd);
      return true;
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
    }
    let held = "";
    try {
      held = readFileSync(path, "utf8");
    } catch {
      continue; // released meanwhile
    }
    const [pid, start] = held.split(" ");
    // Written but not filled in yet, or a live holder: busy.
    if (!pid || (startTime(Number(pid)) !== undefined && startTime(Number(pid)) === start)) return false;
    rmSync(path, { force: true });
  }
  return false;
}

/** The VM's name in errors: its node's directory (`<node>/vm`). */
export const vmName = (dir) => basename(dirname(dir));

/**
 * Take a free agent port of the VM whose files are in `dir` (the first free
 * from port `from` on, round), waiting up to `waitMs` for one; resolves with
 * its number, socket path and a release function.
 */
export async function takePort(dir, waitMs, from = 0) {
  const end = Date.now() + waitMs;
  for (;;) {
    for (let k = 0; k < AGENT_PORTS; k++) {
      const i = (from + k) % AGENT_PORTS;
      const lock = join(dir, `agent-${i}.lock`);
      if (tryLock(lock))
        return { index: i, sock: join(dir, `agent-${i}.sock`), release: () => rmSync(lock, { force: true }) };
    }
    if (Date.now() > end)
      throw new Error(
        `guest agent of VM ${vmName(dir)}: all ${AGENT_PORTS} agent ports are busy after ${waitMs} ms (open shells and commands)`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Connect to a taken port and say hello; resolves with the socket and what
 * came after the echo, or rejects (the socket destroyed) when there is none in
 * `ms`.
 */
function hello(port, name, ms) {
  const id = randomBytes(16);
  const h = frame("H", Buffer.concat([Buffer.from("MRGHELLO"), id]));
  return new Promise((resolve, reject) => {
    const c = connect(port.sock);
    let got = Buffer.alloc(0);
    const fail = (why) => {
      clearTimeout(timer);
      c.destroy();
      reject(new Error(`guest agent of VM ${name}, port ${port.index}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer to hello in ${ms} ms`), ms);
    const onData = (chunk) => {
      got = Buffer.concat([got, chunk]);
      const at = got.indexOf(h);
      // Before the echo: an earlier session's bytes (kept short: only a tail could begin the echo).
      if (at < 0) got = got.subarray(Math.max(0, got.length - h.length + 1));
      else {
        clearTimeout(timer);
        c.off("data", onData).off("error", onError).off("close", onClose);
        resolve({ c, rest: got.subarray(at + h.length) });
      }
    };
    const onError = (e) => fail(e.message);
    const onClose = () => fail("the port closed before the hello was answered (QEMU stopped?)");
    c.on("data", onData).on("error", onError).on("close", onClose);
    c.write(h);
  });
}

/**
 * One session: run `script` in the guest (on a pty when `tty`), with
 * callbacks for each frame the guest sends. Returns the connected socket (write
 * frames to it) once the port is taken; `onClose` runs when it closes, after
 * the port is released.
 */
export async function session(dir, o) {
  const waitMs = o.waitMs ?? 600_000;
  const end = Date.now() + waitMs;
  const name = vmName(dir);
  let from = 0;
  let port;
  let c;
  let rest;
  const failed = [];
  for (;;) {
    port = await takePort(dir, Math.max(0, end - Date.now()), from);
    try {
      ({ c, rest } = await hello(port, name, Math.min(o.helloMs ?? HELLO_MS, Math.max(1000, end - Date.now()))));
      break;
    } catch (e) {
      port.release();
      failed.push(e.message);
      // Another port next: this one's state may be what is wrong.
      from = port.index + 1;
      if (Date.now() >= end || failed.length >= (o.helloTries ?? AGENT_PORTS))
        throw new Error(
          `guest agent of VM ${name}: no session after ${failed.length} tries (${failed.slice(-2).join("; ")}; is the guest up?)`,
        );
    }
  }
  let released = false;
  const release = () => {
    if (!released) port.release();
    released = true;
  };
  const d = new Decoder();
  const onData = (chunk) => {
    let frames;
    try {
      frames = d.push(chunk);
    } catch (e) {
      o.onError?.(new Error(`guest agent of VM ${name}, port ${port.index}: ${e.message}`));
      c.destroy();
      return;
    }
    for (const f of frames) o.onFrame(f);
  };
  c.on("data", onData);
  c.on("error", (e) => o.onError?.(e));
  c.on("close", () => {
    release();
    process.off("exit", release);
    o.onClose?.();
  });
  process.on("exit", release);
  c.write(openFrame(o.script, o.tty, o.size));
  if (rest.length) onData(rest);
  return Object.assign(c, { port: port.index });
}
