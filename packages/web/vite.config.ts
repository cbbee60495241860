// `vite build` (npm run build -w packages/web): the same configuration tests use.
import { defineConfig } from "vite";
import { webConfig } from "./src/build.ts";

export default defineConfig(webConfig());
