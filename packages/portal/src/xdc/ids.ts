/**
 * Unix ids for portal users and projects, given out once and kept: a user's
 * uid (their own group has the same id) and a project's gid are the same in
 * every XDC and on every node, so files in /home and /proj keep their owners
 * wherever they are seen. One counter, so user and project ids never meet.
 */
import type { Store } from "@merge/store";
import { Batch, LOST_RACE, list, read, readDoc, retryBatch } from "../documents.ts";
import { keys, type Member, type SshKey, type User } from "../objects.ts";

const P = "portal/unix-ids/";
export const idKeys = {
  next: () => `${P}next`,
  user: (u: string) => `${P}users/${u}`,
  project: (p: string) => `${P}projects/${p}`,
};

/** First id handed out: above any distribution's own users and groups. */
export const FIRST_ID = 20000;

/** The id of `key`, allocated now if it has none (compare-and-swap on the counter; retried on a race). */
export async function unixId(store: Store, key: string): Promise<number> {
  return retryBatch(`could not allocate a unix id for ${key}: the counter kept changing; try again`, 50, async () => {
    const have = await readDoc<{ id: number }>(store, key);
    if (have !== undefined) return have.value.id;
    const next = await readDoc<{ next: number }>(store, idKeys.next());
    const id = next?.value.next ?? FIRST_ID;
    const batch = new Batch()
      .absent(key)
      .put(key, { id })
      .put(idKeys.next(), { next: id + 1 });
    if (next === undefined) batch.absent(idKeys.next());
    else batch.unchanged(idKeys.next(), next.modRevision);
    return (await batch.tryCommit(store)) ? id : LOST_RACE;
  });
}

/** A project's active members as accounts (XDCs, the jump host, nodes): name, uid, SSH public keys; by name. */
export async function projectAccounts(
  store: Store,
  project: string,
  /** The member's merge key (merge-key.ts), authorized beside the keys they gave. */
  mergeKeyOf?: (user: string, uid: number) => Promise<string | undefined>,
): Promise<{ name: string; uid: number; keys: string[] }[]> {
  const members = await list<Member>(store, keys.members(project));
  const out: { name: string; uid: number; keys: string[] }[] = [];
  for (const m of members) {
    const user = await read<User>(store, keys.user(m.user));
    if (user?.state !== "active") continue;
    const sshKeys = await list<SshKey>(store, keys.sshKeys(m.user));
    const uid = await unixId(store, idKeys.user(m.user));
    const merge = await mergeKeyOf?.(m.user, uid);
    out.push({ name: m.user, uid, keys: [...sshKeys.map((k) => k.key), ...(merge ? [merge] : [])] });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
