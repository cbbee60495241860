import { experiment, Network } from "@merge/model";

const one = new Network("one");
one.node("a");
const two = new Network("two"); // <- the second network
two.node("b");
experiment(one);
export default two;
