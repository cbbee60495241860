// mrg register | login | logout | whoami
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { ApiError, type PortalClient } from "@merge/portal/client";
import type { Command } from "commander";
import {
  action,
  CliError,
  clearToken,
  client,
  loadSession,
  type OutputFlags,
  portalOptions,
  print,
  saveSession,
  signedIn,
  UsageError,
} from "../client.ts";
import { defaultPublicKey } from "./keys.ts";

interface Flags extends OutputFlags {
  portal?: string;
}

/** A password from --password, $MERGE_PASSWORD, or one line of stdin (never echoed, never logged). */
function password(flag: string | undefined): string {
  const p =
    flag ?? process.env.MERGE_PASSWORD ?? (process.stdin.isTTY ? undefined : readFileSync(0, "utf8").split("\n")[0]);
  if (!p) throw new UsageError("no password: pass --password, set MERGE_PASSWORD, or pipe it on stdin");
  return p;
}

/**
 * After signing in: offer to upload the default public key (~/.ssh/id_ed25519.pub, …) when the portal
 * does not have it yet, so ssh into XDCs and nodes works. `--upload-key` does it without asking,
 * `--no-upload-key` never; without either, only a terminal is asked.
 */
async function offerKey(c: PortalClient, user: string, upload: boolean | undefined): Promise<void> {
  if (upload === false) return;
  const path = defaultPublicKey();
  if (path === undefined) {
    if (upload) process.stdout.write("no public key in ~/.ssh to upload (make one: ssh-keygen -t ed25519)\n");
    return;
  }
  const text = readFileSync(path, "utf8").trim();
  const body = text.split(/\s+/)[1];
  if ((await c.keys(user)).some((k) => k.key.split(/\s+/)[1] === body)) {
    if (upload) process.stdout.write(`${path} is already one of your keys\n`);
    return;
  }
  if (upload === undefined) {
    if (!process.stdin.isTTY || !process.stdout.isTTY) return;
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(`Upload ${path} so you can ssh into your XDCs and nodes? [Y/n] `);
    rl.close();
    if (/^n/i.test(answer.trim())) return;
  }
  const k = await c.addKey(user, text);
  process.stdout.write(`uploaded ${path} (${k.fingerprint})\n`);
}

export function registerAuth(program: Command): void {
  portalOptions(
    program
      .command("register <username>")
      .description("create an account (an administrator activates it)")
      .requiredOption("--email <email>", "your email address")
      .option("--name <full name>", "your full name")
      .option("--password <password>", "password (or $MERGE_PASSWORD, or stdin)"),
  ).action(
    action(async (username: string, f: Flags & { email: string; name?: string; password?: string }) => {
      const c = client(f);
      const u = await c.register({
        name: username,
        email: f.email,
        password: password(f.password),
        ...(f.name ? { fullName: f.name } : {}),
      });
      saveSession({ ...loadSession(), portal: c.baseUrl });
      if (f.json) print(f, u, ["name", "email", "state"]);
      else
        process.stdout.write(`registered ${u.name}; the account is ${u.state} until an administrator activates it\n`);
    }),
  );

  portalOptions(
    program
      .command("login [username]")
      .summary("sign in (browser, or --password)")
      .description("sign in: with no password, through the browser (OAuth2 device flow); with --password, directly")
      .option("--password <password>", "sign in with a password instead of the browser (or $MERGE_PASSWORD)")
      .option("--upload-key", "upload ~/.ssh/id_ed25519.pub (or id_ecdsa.pub, id_rsa.pub) if the portal lacks it")
      .option("--no-upload-key", "do not offer to upload a public key")
      .addHelpText(
        "after",
        `
The session (portal URL and token) is kept in ~/.config/merge/session.json ($MERGE_CONFIG_DIR);
$MERGE_TOKEN overrides the token. Examples:
  mrg login alice --password "$PW" --portal http://127.0.0.1:8080
  MERGE_PASSWORD=... mrg login alice
  mrg login                       # opens a browser sign-in (device code)
On a terminal, mrg login offers to upload your public key if the portal does not have it.`,
      ),
    { json: false },
  ).action(
    action(async (username: string | undefined, f: Flags & { password?: string; uploadKey?: boolean }) => {
      const c = client(f);
      if (username !== undefined && (f.password !== undefined || process.env.MERGE_PASSWORD !== undefined)) {
        const t = await c.login(username, password(f.password), "mrg").catch((e: unknown) => {
          if (e instanceof ApiError && e.status === 401)
            throw new CliError(`${e.message} (signing in to ${c.baseUrl} as ${username})`);
          throw e;
        });
        saveSession({
          portal: c.baseUrl,
          token: t.token,
          user: username,
          kind: "api",
          ...(t.record.expires ? { expires: t.record.expires } : {}),
        });
        process.stdout.write(`signed in to ${c.baseUrl} as ${username}\n`);
        c.token = t.token;
        await offerKey(c, username, f.uploadKey);
        return;
      }
      const d = await c.deviceAuthorization();
      process.stdout.write(
        `To sign in, open ${d.verification_uri_complete}\n(or go to ${d.verification_uri} and enter the code ${d.user_code})\n` +
          "waiting for the sign-in ... (Ctrl-C gives up; without a browser: mrg login <username> --password <password>)\n",
      );
      const tokens = await c.pollDeviceToken(d);
      c.token = tokens.access_token;
      const me = await c.whoami();
      saveSession({
        portal: c.baseUrl,
        token: tokens.access_token,
        user: me.name,
        kind: "oauth",
        expires: new Date(Date.now() + tokens.expires_in * 1000).toISOString(),
        ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
      });
      process.stdout.write(`signed in to ${c.baseUrl} as ${me.name}\n`);
      await offerKey(c, me.name, f.uploadKey);
    }),
  );

  program
    .command("logout")
    .summary("sign out")
    .description("sign out: revoke a password sign-in's API token and forget the saved token")
    .action(
      action(async () => {
        const before = loadSession();
        // API tokens are revoked on the portal too (best effort: signing out works offline).
        const id = /^mrg_([a-z0-9]{12})\./.exec(before.token ?? "")?.[1];
        if (before.kind === "api" && id && before.user)
          await client()
            .deleteToken(before.user, id)
            .catch(() => undefined);
        const s = clearToken();
        process.stdout.write(`signed out of ${s.portal}\n`);
      }),
    );

  portalOptions(program.command("whoami").description("the signed-in user")).action(
    action(async (f: Flags) => {
      const u = await signedIn(f).whoami();
      print(f, u, ["name", "email", "state", "admin"]);
    }),
  );
}
