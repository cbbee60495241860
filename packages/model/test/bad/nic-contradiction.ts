import { Network, nic, port } from "@merge/model";

const net = new Network("nic");
const a = net.node("a");
const b = net.node("b");
const l = net.connect([a, b]);
l.socket(b).with(nic("e1000"), port.model.in(["virtio", "i40e"])); // <- e1000 not in the list
export default net;
