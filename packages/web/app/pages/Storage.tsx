/**
 * The signed-in user's storage: their /home and each project's /proj, as XDCs and
 * nodes mount them, with the quota the portal's policy gives each (a volume of
 * its own: a write past it fails with "No space left on device") and its use.
 * The same figures as `mrg quota`.
 */
import { formatQuantity } from "@merge/xir/browser";
import type { Api, StorageUsage, User } from "../api.ts";
import { Show, Table, useLoad } from "../parts.tsx";

type Volume = StorageUsage["home"];

const bytes = (n: number | null, none: string) => (n === null ? none : formatQuantity(n, "bytes"));

/** Used as a share of the quota, for the bar; none without a quota or a mount. */
function share(v: Volume): number | undefined {
  if (v.quota === null || v.used === null || v.available === null) return undefined;
  // The file system's own reserve is neither used nor available: measure against both.
  const whole = v.used + v.available;
  return whole > 0 ? Math.min(1, v.used / whole) : undefined;
}

export function StoragePage() {
  const data = useLoad(async (a: Api) => {
    const me: User = await a.whoami();
    return a.storage(me.name);
  }, "storage");
  return (
    <section>
      <h1>Storage</h1>
      <p className="muted small">
        Your <code>/home</code> and your projects' <code>/proj</code> directories, shared by your XDCs and the nodes of
        your materializations. A directory with a quota is a volume of its own: a write past it fails with "No space
        left on device" (on hosts that reach it over the network, an I/O error). <code>mrg quota</code> shows the same.
      </p>
      <Show loaded={data}>
        {(s: StorageUsage) => (
          <Table testId="storage" head={["Directory", "Quota", "Used", "Available", ""]}>
            {[s.home, ...s.projects].map((v) => {
              const used = share(v);
              return (
                <tr key={v.path} data-path={v.path}>
                  <td>
                    <code>{v.path}</code>
                  </td>
                  <td>{bytes(v.quota, "none")}</td>
                  <td>{bytes(v.used, "-")}</td>
                  <td>{bytes(v.available, "-")}</td>
                  <td>
                    {used !== undefined && (
                      <meter min={0} max={1} high={0.9} value={used} title={`${Math.round(used * 100)}% used`} />
                    )}
                  </td>
                </tr>
              );
            })}
          </Table>
        )}
      </Show>
    </section>
  );
}
