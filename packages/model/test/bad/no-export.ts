// <- nothing exported
import { Network } from "@merge/model";

const net = new Network("noexport");
net.node("a");
