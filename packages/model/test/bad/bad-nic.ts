import { custom, Network } from "@merge/model";

const net = new Network("nicmodel");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.socket(a).with(custom("socket", "port.model", "==", "tulip")); // <- no such NIC
export default net;
