// writeKeyFiles: the keys directory the jump host's and an XDC's sshd read holds exactly the
// accounts given, each file whole with its mode (and owner, as root), no temporary left behind.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { writeKeyFiles } from "../src/accounts.ts";

test("writeKeyFiles writes each account's file and removes the others", () => {
  const dir = mkdtempSync(join(tmpdir(), "mrg-xdc-keys-"));
  try {
    writeFileSync(join(dir, "gone"), "old key\n");
    writeFileSync(join(dir, ".crashed.tmp"), "half");
    const root = process.getuid?.() === 0;
    writeKeyFiles(dir, [
      { name: "alice", text: "ssh-ed25519 AAAA alice\n", mode: 0o600, ...(root ? { owner: 20001 } : {}) },
      { name: "bob", text: "", mode: 0o644 },
    ]);
    assert.deepEqual(readdirSync(dir).sort(), ["alice", "bob"]);
    assert.equal(readFileSync(join(dir, "alice"), "utf8"), "ssh-ed25519 AAAA alice\n");
    assert.equal(statSync(join(dir, "alice")).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, "bob")).mode & 0o777, 0o644);
    if (root) assert.equal(statSync(join(dir, "alice")).uid, 20001);
    writeKeyFiles(dir, []);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
