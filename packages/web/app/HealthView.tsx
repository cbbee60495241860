/**
 * The operations view on the admin page (GET /health/detail): what needs
 * looking at first, then portal replicas, the store, facilities with their
 * certificates, each facility's failed actions with their errors, and active materializations with age and idleness.
 */
import { formatDuration, type PortalHealth } from "@merge/portal/client";
import { Show, Table, useLoad } from "./parts.tsx";

export function HealthView() {
  const data = useLoad((a) => a.healthDetail(), "health");
  return (
    <Show loaded={data}>
      {(h: PortalHealth) => (
        <div data-testid="health" data-warnings={h.warnings.length}>
          <h2>Health</h2>
          {h.warnings.length === 0 ? (
            <p className="muted">Nothing to look at.</p>
          ) : (
            <ul className="diagnostics" data-testid="health-warnings">
              {h.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          )}
          <p data-testid="health-store">
            Store: {h.store.backend}, revision {h.store.revision}
            {h.store.bytes !== undefined && `, ${(h.store.bytes / 2 ** 20).toFixed(1)} MiB`}
            {h.store.backend === "etcd" &&
              `, leader ${h.store.leader ?? "none"}, ${h.store.members?.filter((m) => m.reachable).length ?? 0} of ${h.store.members?.length ?? 0} members reachable`}
            . Portal replicas: {h.replicas.length}.
          </p>
          <Table testId="health-facilities" head={["Facility", "State", "Certificate expires"]}>
            {h.facilities.map((f) => (
              <tr key={f.name} className={f.daysLeft !== null && f.daysLeft < 30 ? "error" : undefined}>
                <td>{f.name}</td>
                <td>{f.state}</td>
                <td>
                  {f.certificateExpires === null ? "" : `${f.certificateExpires.slice(0, 10)} (${f.daysLeft} days)`}
                </td>
              </tr>
            ))}
          </Table>
          <Table testId="health-failed" head={["Facility", "Materialization", "Failed action", "Tries", "Error"]}>
            {h.facilities.flatMap((f) =>
              f.health && "failed" in f.health
                ? f.health.failed.map((a) => (
                    <tr key={`${f.name} ${a.mzid} ${a.task}/${a.action}`} className="error">
                      <td>{f.name}</td>
                      <td>{a.mzid}</td>
                      <td>
                        {a.task}/{a.action}
                      </td>
                      <td>{a.attempts}</td>
                      <td>{a.error}</td>
                    </tr>
                  ))
                : [],
            )}
          </Table>
          <Table testId="health-materializations" head={["Materialization", "State", "Creator", "Age", "Idle"]}>
            {h.materializations.map((m) => (
              <tr key={m.id}>
                <td>{m.id}</td>
                <td>{m.state}</td>
                <td>{m.creator}</td>
                <td>{formatDuration(m.ageSeconds)}</td>
                <td title={m.idle?.why}>
                  {m.idle ? `${m.idle.flagged ? "idle " : ""}${formatDuration(m.idle.idleSeconds)}` : ""}
                </td>
              </tr>
            ))}
          </Table>
        </div>
      )}
    </Show>
  );
}
