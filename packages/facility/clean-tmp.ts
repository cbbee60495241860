import { removeStaleFabric } from "./src/linux/fabric.ts";
import { sweep } from "./src/linux/sweep.ts";
import { prefixOn } from "./src/linux/names.ts";
const dir = process.argv[2]!;
for (const h of ["h1","h2","h3"]) for (const m of process.argv.slice(3)) console.log(JSON.stringify(await sweep(prefixOn(m, h), `${dir}/hosts/${h}`)));
console.log(await removeStaleFabric(`${dir}/hosts`));
