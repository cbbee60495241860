import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { openSqliteStore } from "../src/index.ts";
import { conformance } from "./conformance.ts";

const dir = mkdtempSync(join(tmpdir(), "merge-store-sqlite-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// Every handle is its own connection to the same file, as separate processes would have.
conformance("sqlite", async () => openSqliteStore({ dir, leaseSweepMs: 100 }), { leaseSlackMs: 500 });
