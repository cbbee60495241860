/**
 * Notices to users: lease warnings, expiry, idleness, reclaim. Each notice is a
 * key under the user's prefix on a store lease (NOTICE_KEPT_SECONDS), so they
 * age out by themselves; ids sort by time, and a client that remembers the
 * last id it showed asks for what came after (`mrg notifications --follow`,
 * the web UI's notice bar).
 *
 * The e-mail hook: a portal started with `notifyCommand` (`MERGE_NOTIFY_COMMAND`)
 * runs that program once per notice, with the notice and the user's address
 * as one JSON object on its standard input:
 *
 *   {"to": "ivy@example.org", "user": "ivy", "notice": {id, at, kind, realization, message}}
 *
 * Its exit status is logged, never retried; the program (sendmail, a chat
 * webhook) is the operator's. The notice is stored whatever it does.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Store } from "@merge/store";
import { read } from "./documents.ts";
import { keys, type User } from "./objects.ts";

export const NOTICE_KEPT_SECONDS = 30 * 86_400;

export type NoticeKind = "lease-warning" | "lease-expired" | "idle" | "reclaimed";

export interface Notice {
  /** Sorts by time; `after` in listings. */
  id: string;
  at: string;
  kind: NoticeKind;
  /** `rlz.exp.proj`. */
  realization: string;
  message: string;
}

export class Notifier {
  private lease: { id: string; at: number } | undefined;

  constructor(
    private readonly store: Store,
    private readonly command?: string,
    private readonly log: (m: string) => void = (m) => process.stderr.write(`portal: ${m}\n`),
    /** Told of every notice sent (metrics). */
    private readonly sent?: (n: Notice) => void,
  ) {}

  /** Stores a notice for `user` (and hands it to the notify command, if any). */
  async notify(user: string, n: Omit<Notice, "id" | "at">, at = Date.now()): Promise<Notice> {
    const notice: Notice = {
      id: `${String(at).padStart(15, "0")}-${randomBytes(4).toString("hex")}`,
      at: new Date(at).toISOString(),
      ...n,
    };
    await this.store.txn({
      compare: [],
      success: [
        {
          op: "put",
          key: `${keys.notices(user)}${notice.id}`,
          value: JSON.stringify(notice),
          lease: await this.noticeLease(),
        },
      ],
    });
    this.sent?.(notice);
    if (this.command) await this.hand(user, notice);
    return notice;
  }

  /** One store lease per hour of notices (not one per notice): they age out together. */
  private async noticeLease(): Promise<string> {
    if (this.lease === undefined || Date.now() - this.lease.at > 3600_000) {
      this.lease = { id: await this.store.grant(NOTICE_KEPT_SECONDS), at: Date.now() };
    }
    return this.lease.id;
  }

  private async hand(user: string, notice: Notice): Promise<void> {
    const u = await read<User>(this.store, keys.user(user));
    const input = JSON.stringify({ to: u?.email ?? "", user, notice });
    await new Promise<void>((done) => {
      const child = spawn(this.command as string, { shell: true, stdio: ["pipe", "ignore", "pipe"] });
      let err = "";
      child.stderr.on("data", (d: Buffer) => {
        if (err.length < 2000) err += d.toString();
      });
      child.on("error", (e) => {
        this.log(`notify command failed to start: ${e.message}`);
        done();
      });
      child.on("close", (code) => {
        if (code !== 0) this.log(`notify command exited ${code} for notice ${notice.id} to ${user}: ${err.trim()}`);
        done();
      });
      // A command that does not read its input is its business, not an error here.
      child.stdin.on("error", () => undefined);
      child.stdin.end(input);
    });
  }
}

/** A user's notices after `after` (an id), oldest first. */
export async function listNotices(store: Store, user: string, after?: string, limit = 200): Promise<Notice[]> {
  const all = (await store.range(keys.notices(user))).map((kv) => JSON.parse(kv.value) as Notice);
  const out = after === undefined ? all : all.filter((n) => n.id > after);
  return out.slice(-limit);
}
