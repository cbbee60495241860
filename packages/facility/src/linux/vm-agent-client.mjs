// The host end of one guest-agent session, as a process of its own so `exec`
// and the shell on a VM node have a real child (stdin, stdout, stderr, exit
// status) like a container's:
//   node vm-agent-client.mjs <vm dir> <base64 script> [tty <rows> <cols>]
// Stdin streams to the command as it comes (its end is the command's end of
// input; on a pty, ^D); the guest's stdout and stderr come out apart; it exits
// with the command's status (255 when the session is lost). With `tty`, the
// command runs on a pty in the guest and fd 3 takes window sizes, one
// `<rows> <cols>` a line.
import { Socket } from "node:net";
import { CHUNK, frame, session, sizeFrame, vmName } from "./vm-agent-wire.mjs";

const [dir, script, mode, rows, cols] = process.argv.slice(2);
const tty = mode === "tty";
let started = false;
let done = false;

const finish = (code, message) => {
  if (done) return;
  done = true;
  if (message) process.stderr.write(`${message}\n`);
  // Exit once what the guest wrote is out.
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
};

let heard = Date.now();
const c = await session(dir, {
  script: Buffer.from(script, "base64").toString(),
  tty,
  size: tty ? { rows: Number(rows) || 24, cols: Number(cols) || 80 } : undefined,
  onFrame: (f) => {
    heard = Date.now();
    if (f.type === "1") {
      if (!process.stdout.write(f.payload)) {
        c.pause();
        process.stdout.once("drain", () => c.resume());
      }
    } else if (f.type === "2") process.stderr.write(f.payload);
    else if (f.type === "S") started = true;
    else if (f.type === "Q") {
      c.end();
      finish(f.payload.readInt32BE(0));
    } else if (f.type === "X") finish(255, `guest agent: ${f.payload.toString()}`);
  },
  onError: (e) => finish(255, `guest agent: ${e.message}`),
  onClose: () => finish(255, "guest agent: the session ended without an exit status (the VM stopped?)"),
}).catch((e) => finish(255, e.message));
if (c) wire(c);

/** Stdin, window sizes and pings into the session. */
function wire(c) {
  heard = Date.now();
  // Stdin as it comes, with back-pressure from the guest (the agent stops reading while the command has not).
  process.stdin.on("data", (d) => {
    for (let i = 0; i < d.length; i += CHUNK) {
      if (!c.write(frame("I", d.subarray(i, i + CHUNK)))) {
        process.stdin.pause();
        c.once("drain", () => process.stdin.resume());
      }
    }
  });
  process.stdin.on("end", () => c.write(frame("E")));
  process.stdin.on("error", () => {});

  if (tty) {
    let buf = "";
    // A socket, not fs.createReadStream: a read pending in the thread pool would keep process.exit from ending.
    const ctl = new Socket({ fd: 3, readable: true, writable: false });
    ctl.setEncoding("utf8").on("data", (d) => {
      buf += d;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const [r, k] = buf.slice(0, nl).split(" ").map(Number);
        buf = buf.slice(nl + 1);
        if (r > 0 && k > 0) c.write(sizeFrame({ rows: r, cols: k }));
      }
    });
    ctl.on("error", () => {});
  }

  // A ping now and then: a guest that restarted has no session, and says so; a guest that says nothing at all
  // (no start, no pong) in SILENT_MS is lost: the client does not wait for ever.
  const SILENT_MS = 60_000;
  setInterval(() => {
    if (done) return;
    if (Date.now() - heard > SILENT_MS)
      finish(255, `guest agent of VM ${vmName(dir)}, port ${c.port}: no answer in ${SILENT_MS} ms`);
    else if (started) c.write(frame("P"));
  }, 5000).unref();
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"])
  process.on(sig, () => finish(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1)));
