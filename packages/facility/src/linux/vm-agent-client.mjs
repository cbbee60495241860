// The host end of one guest-agent request, as a process of its own so `exec`
// on a VM node has a real child (stdin, stdout, exit status) like a container's:
// node vm-agent-client.mjs <agent socket> <base64 script>
// reads stdin to its end, sends the request, writes the guest's output, exits with its status.
import { connect } from "node:net";

const [sock, script] = process.argv.slice(2);
const chunks = [];
process.stdin.on("data", (d) => chunks.push(d));
process.stdin.on("end", () => {
  const id = `c${process.pid}x${Date.now()}`;
  const input = Buffer.concat(chunks);
  const c = connect(sock);
  let buf = "";
  let body;
  c.on("error", (e) => {
    process.stderr.write(`guest agent: ${e.message}\n`);
    process.exit(255);
  });
  c.setEncoding("utf8").on("data", (d) => {
    buf += d;
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
      if (line === `BEGIN ${id}`) body = [];
      else if (body && line.startsWith(`END ${id} `)) {
        process.stdout.write(Buffer.from(body.join(""), "base64"), () => process.exit(Number(line.split(" ")[2])));
        c.destroy();
        return;
      } else if (body) body.push(line);
    }
  });
  c.write(`${id} ${script} ${input.length ? input.toString("base64") : "-"}\n`);
});
