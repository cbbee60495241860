/**
 * QMP, QEMU's machine protocol, over the VM's unix socket: one connection per
 * command (greeting, `qmp_capabilities`, the command, its return). Power
 * actions on a running VM go through here.
 */
import { connect } from "node:net";

export async function qmp(
  socket: string,
  command: string,
  args?: Record<string, unknown>,
  timeoutMs = 10_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let buf = "";
    let step = 0;
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`QMP ${command} on ${socket}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err: Error | undefined, value?: unknown) => {
      clearTimeout(timer);
      c.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    c.on("error", (e) => done(new Error(`QMP ${command} on ${socket}: ${e.message}`)));
    // `quit` closes the socket as its answer.
    c.on("close", () => (command === "quit" && step === 2 ? done(undefined, {}) : undefined));
    c.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
        if (msg.event) continue;
        if (msg.error) return done(new Error(`QMP ${command}: ${msg.error.desc}`));
        if (step === 0 && msg.QMP) {
          step = 1;
          c.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
        } else if (step === 1 && "return" in msg) {
          step = 2;
          c.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
        } else if (step === 2 && "return" in msg) return done(undefined, msg.return);
      }
    });
  });
}
