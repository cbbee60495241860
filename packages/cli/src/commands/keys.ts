// mrg keys add|list|delete: the SSH public keys the portal gives the jump host and your XDCs
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { action, CliError, done, type OutputFlags, portalOptions, print, signedIn } from "../client.ts";

type Flags = OutputFlags & { portal?: string; user?: string };

/** The key files of ~/.ssh that `mrg keys add` and `mrg xdc ssh` look for, first found first. */
export const DEFAULT_KEYS = ["id_ed25519", "id_ecdsa", "id_rsa"] as const;

/** The public keys ssh uses by default, first found first. */
export function defaultPublicKey(): string | undefined {
  for (const k of DEFAULT_KEYS) {
    const p = join(homedir(), ".ssh", `${k}.pub`);
    if (existsSync(p)) return p;
  }
  return undefined;
}

export function registerKeys(program: Command): void {
  const k = program
    .command("keys")
    .description("your SSH public keys: the jump host and your XDCs let you in with them")
    .addHelpText(
      "after",
      `
Examples:
  mrg keys add                      # ~/.ssh/id_ed25519.pub (or id_ecdsa.pub, id_rsa.pub)
  mrg keys add ~/.ssh/work.pub
  mrg keys list
  mrg keys delete <fingerprint>`,
    );
  const me = async (f: Flags) => f.user ?? (await signedIn(f).whoami()).name;
  portalOptions(
    k
      .command("add [file]")
      .description("upload a public key (default: ~/.ssh/id_ed25519.pub)")
      .option("--user <name>", "whose key (default: you)"),
  ).action(
    action(async (file: string | undefined, f: Flags) => {
      const path = file ?? defaultPublicKey();
      if (path === undefined)
        throw new CliError(
          "no public key in ~/.ssh (id_ed25519.pub, id_ecdsa.pub, id_rsa.pub); make one with ssh-keygen -t ed25519, or name the file",
        );
      if (!existsSync(path)) throw new CliError(`${path}: no such file`);
      const text = readFileSync(path, "utf8").trim();
      if (text.includes("PRIVATE KEY"))
        throw new CliError(
          `${path} is a private key: give the public one (${path}.pub); private keys never leave your machine`,
        );
      print(f, await signedIn(f).addKey(await me(f), text), ["fingerprint", "key", "created"]);
    }),
  );
  portalOptions(k.command("list").description("your public keys").option("--user <name>", "whose keys")).action(
    action(async (f: Flags) => {
      print(f, await signedIn(f).keys(await me(f)), ["fingerprint", "key", "created"]);
    }),
  );
  portalOptions(
    k
      .command("delete <fingerprint>")
      .description("remove a key (see mrg keys list)")
      .option("--user <name>", "whose key"),
  ).action(
    action(async (fp: string, f: Flags) => {
      await signedIn(f).deleteKey(await me(f), fp);
      done(f, `deleted key ${fp}`, { fingerprint: fp, deleted: true });
    }),
  );
}
