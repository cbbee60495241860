import { debianImage } from "../../src/linux/image.ts";

const t = Date.now();
console.log(await debianImage("/tmp/mrg-deb", "bookworm", { log: console.log }), Date.now() - t);
