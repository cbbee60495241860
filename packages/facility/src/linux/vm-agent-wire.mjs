// The host end of the guest agent's protocol (native/mrg-agent.c): frames
// `0xA5 TYPE LEN(u32 BE) PAYLOAD` over one of the VM's agent ports
// (`vm/agent-<n>.sock`, a virtio-serial port in the guest). A port carries one
// session at a time, so a session first takes the port's lock file
// (`agent-<n>.lock`, holding its process's pid and start time: a lock whose
// holder is gone is taken over). Plain JavaScript: vm-agent-client.mjs runs it
// without a TypeScript loader; vm.ts imports it (types in vm-agent-wire.d.mts).
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";

/** How many agent ports a VM has: sessions at once (an open shell holds one). */
export const AGENT_PORTS = 8;
const MAGIC = 0xa5;
/** Stdin goes in frames of at most this many bytes. */
export const CHUNK = 65536;

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

/**
 * Take a free agent port of the VM whose files are in `dir`, waiting up to
 * `waitMs` for one; resolves with its socket path and a release function.
 */
export async function takePort(dir, waitMs) {
  const end = Date.now() + waitMs;
  for (;;) {
    for (let i = 0; i < AGENT_PORTS; i++) {
      const lock = join(dir, `agent-${i}.lock`);
      if (tryLock(lock)) return { sock: join(dir, `agent-${i}.sock`), release: () => rmSync(lock, { force: true }) };
    }
    if (Date.now() > end)
      throw new Error(`guest agent: all ${AGENT_PORTS} agent ports of this VM are busy (open shells and commands)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * One session: run `script` in the guest (on a pty when `tty`), with
 * callbacks for each frame the guest sends. Returns the connected socket (write
 * frames to it) once the port is taken; `onClose` runs when it closes, after
 * the port is released.
 */
export async function session(dir, o) {
  const port = await takePort(dir, o.waitMs ?? 600_000);
  const c = connect(port.sock);
  let released = false;
  const release = () => {
    if (!released) port.release();
    released = true;
  };
  const d = new Decoder();
  c.on("data", (chunk) => {
    for (const f of d.push(chunk)) o.onFrame(f);
  });
  c.on("error", (e) => o.onError?.(e));
  c.on("close", () => {
    release();
    process.off("exit", release);
    o.onClose?.();
  });
  process.on("exit", release);
  c.write(openFrame(o.script, o.tty, o.size));
  return c;
}
