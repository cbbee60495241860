import { Network } from "@merge/model";

const net = new Network("typeerror");
const nodes = net.nodesNamed("n", 2);
const third = nodes[2] as unknown as { name: string };
console.log(third.name); // <- undefined.name
export default net;
