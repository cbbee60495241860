import { Network, platform } from "@merge/model";

const net = new Network("platform");
const a = net.node("a", platform.eq("x86_64"), platform.eq("arm64")); // <- two platforms
const b = net.node("b");
net.connect([a, b]);
export default net;
