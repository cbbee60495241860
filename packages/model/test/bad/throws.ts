import { Network } from "@merge/model";

const net = new Network("throws");
const a = net.node("a");
if (a.name === "a") throw new Error("boom"); // <- the throw
export default net;
