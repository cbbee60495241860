/**
 * A realization: state, diagnostics, which resource each node got, how each
 * link was realized, the accept / reject / relinquish actions, and the
 * materialization when the portal has that API. Also the list of all
 * realizations the user can see.
 */

import { formatDuration } from "@merge/portal/client";
import type { Realization as Embedding } from "@merge/xir/browser";
import type { Realization } from "../api.ts";
import { emulationSummary } from "../emulation.ts";
import { Action, Badge, Link, Show, Table, useLoad, When } from "../parts.tsx";
import { navigate, pathOf } from "../route.ts";
import { Materialization } from "./Materialization.tsx";

const GiB = 1024 ** 3;

/** How long until `expires`: `1d2h`, or `expired`. */
function timeLeft(expires: string): string {
  const s = (Date.parse(expires) - Date.now()) / 1000;
  return s <= 0 ? "expired" : formatDuration(s);
}

interface Props {
  project: string;
  experiment: string;
  realization: string;
}

export function RealizationPage({ project, experiment, realization }: Props) {
  const data = useLoad(
    (a) => a.realization(project, experiment, realization),
    `rlz/${project}/${experiment}/${realization}`,
  );
  const back = pathOf({ page: "experiment", project, experiment });
  return (
    <section>
      <p className="crumbs">
        <Link to={{ page: "projects" }}>Projects</Link> / <Link to={{ page: "project", project }}>{project}</Link> /{" "}
        <Link to={{ page: "experiment", project, experiment }}>{experiment}</Link> /
      </p>
      <Show loaded={data}>
        {(r: Realization) => {
          const reload = data.state === "ready" ? data.reload : () => {};
          const emb = r.realization as Embedding | undefined;
          return (
            <div data-testid="realization" data-state={r.state}>
              <h1>
                {r.id} <Badge value={r.state} />
              </h1>
              <p>
                Revision #{r.revision}, by {r.creator}, <When time={r.created} />
                {r.state === "pending" && r.expires !== null && (
                  <>
                    {" "}
                    — accept before <When time={r.expires} /> or the resources go back
                  </>
                )}
              </p>
              {r.state === "accepted" && <IdleLine {...{ project, experiment, realization }} />}
              {r.state === "accepted" && r.expires !== null && (
                <p data-testid="lease">
                  Held until <When time={r.expires} /> (<span data-testid="lease-left">{timeLeft(r.expires)}</span>{" "}
                  left); then it is dematerialized and relinquished.{" "}
                  <Action
                    label="Extend by 24h"
                    run={(a) => a.extendLease(project, experiment, realization, 86_400)}
                    done={reload}
                  />
                </p>
              )}
              <div className="buttons">
                {r.state === "pending" && (
                  <>
                    <Action label="Accept" run={(a) => a.accept(project, experiment, realization)} done={reload} />
                    <Action
                      label="Reject"
                      danger
                      run={(a) => a.reject(project, experiment, realization)}
                      done={() => navigate(back)}
                    />
                  </>
                )}
                {r.state !== "pending" && (
                  <Action
                    label="Relinquish"
                    danger
                    confirm={`Relinquish ${r.id}? Its resources go back to the testbed.`}
                    run={(a) => a.relinquish(project, experiment, realization)}
                    done={() => navigate(back)}
                  />
                )}
              </div>
              {r.diagnostics.length > 0 && (
                <ul className="diagnostics" data-testid="diagnostics">
                  {r.diagnostics.map((d) => (
                    <li key={d}>{d}</li>
                  ))}
                </ul>
              )}
              {emb !== undefined && <EmbeddingTables emb={emb} />}
              {r.state === "accepted" && <Materialization {...{ project, experiment, realization }} embedding={emb} />}
            </div>
          );
        }}
      </Show>
    </section>
  );
}

/** How idle the materialization is and why (nothing when it is not materialized). */
function IdleLine({ project, experiment, realization }: Props) {
  const idle = useLoad(
    (a) => a.idleness(project, experiment, realization).catch(() => null),
    `idle/${project}/${experiment}/${realization}`,
  );
  if (idle.state !== "ready" || idle.data === null) return null;
  return (
    <p data-testid="idle" data-flagged={idle.data.flagged} className={idle.data.flagged ? "error" : "muted"}>
      {idle.data.flagged ? "Idle: " : "Activity: "}
      {idle.data.why}
    </p>
  );
}

function EmbeddingTables({ emb }: { emb: Embedding }) {
  return (
    <>
      <h2>Nodes</h2>
      <Table testId="node-resources" head={["Node", "Facility", "Resource", "Mode", "Cores", "Memory", "Interfaces"]}>
        {emb.nodes.map((n) => (
          <tr key={n.node}>
            <td>{n.node}</td>
            <td>{n.facility}</td>
            <td>{n.resource}</td>
            <td>{n.mode}</td>
            <td>{n.alloc.cores}</td>
            <td>{Math.round((n.alloc.memory / GiB) * 10) / 10} GiB</td>
            <td>
              {n.interfaces
                .map(
                  (i) =>
                    `${i.socket}→${i.port}${i.vlan !== undefined ? ` vlan ${i.vlan}` : ""}${i.vni !== undefined ? ` vni ${i.vni}` : ""}`,
                )
                .join(", ")}
            </td>
          </tr>
        ))}
      </Table>
      <h2>Links</h2>
      <Table testId="link-paths" head={["Link", "Segments", "Emulation", "Reserved"]}>
        {emb.links.map((l) => (
          <tr key={l.link}>
            <td>
              {l.link}
              {l.external && <span className="muted"> (across facilities)</span>}
            </td>
            <td className="small">
              {l.segments.map((s) => (
                <div key={s.waypoints.map((w) => `${w.resource}.${w.port}`).join(" ")}>
                  {s.waypoints.map((w) => `${w.resource}.${w.port}`).join(" → ")}
                </div>
              ))}
            </td>
            <td>
              {l.emulator === undefined ? (
                <span className="muted">none</span>
              ) : (
                <EmbeddedEmulation emulator={l.emulator.resource} emulation={l.emulation} />
              )}
            </td>
            <td>{l.capacity > 0 ? `${l.capacity / 1e6} Mbit/s` : "—"}</td>
          </tr>
        ))}
      </Table>
    </>
  );
}

/** What the realization asks the emulator to run: the link's values, then each direction set apart. */
function EmbeddedEmulation({
  emulator,
  emulation,
}: {
  emulator: string;
  emulation: Embedding["links"][number]["emulation"];
}) {
  const { toward = [], ...link } = emulation ?? {};
  const own = emulationSummary(link);
  return (
    <>
      {emulator}
      {own !== "" && `, ${own}`}
      {toward.map(({ node, ...values }) => (
        <div key={node} className="small">
          toward {node}: {emulationSummary(values)}
        </div>
      ))}
    </>
  );
}

export function RealizationsPage() {
  const all = useLoad((a) => a.allRealizations(), "realizations");
  return (
    <section>
      <h1>Realizations</h1>
      <Show loaded={all}>
        {(rs: Realization[]) =>
          rs.length === 0 ? (
            <p className="muted">No realizations.</p>
          ) : (
            <Table
              testId="all-realizations"
              head={["Realization", "State", "Revision", "Resources", "Creator", "Created", "Left"]}
            >
              {rs.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link
                      to={{
                        page: "realization",
                        project: r.project,
                        experiment: r.experiment,
                        realization: r.name,
                      }}
                    >
                      {r.id}
                    </Link>
                  </td>
                  <td>
                    <Badge value={r.state} />
                  </td>
                  <td>{r.revision}</td>
                  <td>{r.resources.length}</td>
                  <td>{r.creator}</td>
                  <td>
                    <When time={r.created} />
                  </td>
                  <td>{r.expires === null ? "" : timeLeft(r.expires)}</td>
                </tr>
              ))}
            </Table>
          )
        }
      </Show>
    </section>
  );
}
