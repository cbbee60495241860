// TypeScript twin of ../lans-routers.py: compiles to the same XIR.
import { capacity, cores, experiment, gb, gbps, memory, Network, routing } from "@merge/model";

const net = new Network("three-lans", routing.static);

const LANS = 3;
const HOSTS = 25;

const routers = Array.from({ length: LANS }, (_, i) => net.node(`router${i}`, cores.ge(2), memory.ge(gb(4))));

for (let i = 0; i < LANS; i++) {
  const router = routers[i]!;
  const hosts = Array.from({ length: HOSTS }, (_, j) => net.node(`h${i}-${j}`));
  const lan = net.connect([router, ...hosts]);
  lan.socket(router).addr(`10.${i}.0.1/24`);
  hosts.forEach((h, j) => {
    lan.socket(h).addr(`10.${i}.0.${10 + j}/24`);
  });
}

let k = 0;
for (let i = 0; i < LANS; i++) {
  for (let j = i + 1; j < LANS; j++) {
    const wan = net.connect([routers[i]!, routers[j]!], capacity.eq(gbps(10)));
    wan.socket(routers[i]!).addr(`172.16.${k}.1/30`);
    wan.socket(routers[j]!).addr(`172.16.${k}.2/30`);
    k++;
  }
}

experiment(net);
