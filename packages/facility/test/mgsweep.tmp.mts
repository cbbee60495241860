import { sweep } from "../src/linux/sweep.ts";
for (const p of process.argv.slice(2)) console.log(p, JSON.stringify(await sweep(p, "/tmp/mgsmoke")));
