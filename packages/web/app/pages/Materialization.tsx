/**
 * A realization's materialization: its status per facility, its nodes with
 * their addresses (experiment, infranet; on a shared host its NAT ports), image, profile (what a virtual node
 * got: kind, accel, cores, memory, CPU cap, NICs, dilation), power and the start / stop /
 * reboot / reimage buttons, and its links
 * with the emulation each runs per direction and a form to change it at
 * runtime. Shown on the realization page once it is accepted.
 */

import { describeControl, describeProfile, xirEmulation } from "@merge/portal/client";
import type { Realization as Embedding, LinkEmulation } from "@merge/xir/browser";
import { type FormEvent, useEffect, useId, useState } from "react";
import { ApiError, call, type MaterializationStatus, type PowerVerb } from "../api.ts";
import {
  directionChoices,
  directionRows,
  type EmulationForm,
  emulationChange,
  showCapacity,
  showLatency,
  showLoss,
} from "../emulation.ts";
import { Action, Badge, ErrorBox, type Loaded, Show, Table, useLoad } from "../parts.tsx";

interface Props {
  project: string;
  experiment: string;
  realization: string;
}

/** The materialization, when the portal has that API (a 404 for the route itself means it has not). */
export function Materialization({ embedding, ...props }: Props & { embedding: Embedding | undefined }) {
  const { project, experiment, realization } = props;
  const m = useLoad(
    (a) =>
      a.materialization(project, experiment, realization).catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) {
          return e.message.startsWith("no such API route") ? ("unsupported" as const) : ("none" as const);
        }
        throw e;
      }),
    `mz/${project}/${experiment}/${realization}`,
  );
  return (
    <>
      <h2>Materialization</h2>
      <MaterializationBody m={m} endpoints={linkEndpoints(embedding)} {...props} />
    </>
  );
}

/** Each link's endpoint nodes, from the realization's segments. */
function linkEndpoints(emb: Embedding | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const l of emb?.links ?? []) {
    out.set(l.link, [...new Set(l.segments.flatMap((s) => s.endpoints.map((e) => e.node)))]);
  }
  return out;
}

type Endpoints = Map<string, string[]>;

function MaterializationBody({
  m,
  endpoints,
  ...props
}: Props & { m: Loaded<MaterializationStatus | "unsupported" | "none">; endpoints: Endpoints }) {
  const { project, experiment, realization } = props;
  if (m.state !== "ready") return <Show loaded={m}>{() => null}</Show>;
  const s = m.data;
  if (s === "unsupported") return <p className="muted">This portal has no materialization API.</p>;
  if (s === "none") {
    return (
      <p>
        Not materialized.{" "}
        <Action label="Materialize" run={(a) => a.materialize(project, experiment, realization)} done={m.reload} />
      </p>
    );
  }
  return <MaterializationStatusView s={s} reload={m.reload} endpoints={endpoints} {...props} />;
}

const SETTLED = new Set(["active", "error", "dematerialized"]);

function MaterializationStatusView({
  s,
  reload,
  endpoints,
  ...props
}: Props & { s: MaterializationStatus; reload: () => void; endpoints: Endpoints }) {
  const { project, experiment, realization } = props;
  // Follow it while it is moving.
  useEffect(() => {
    if (SETTLED.has(s.status)) return;
    const t = setTimeout(reload, 3000);
    return () => clearTimeout(t);
  }, [s, reload]);
  const live = s.status !== "dematerialized" && s.status !== "dematerializing";
  return (
    <div data-testid="materialization" data-status={s.status}>
      <p>
        <Badge value={s.status} /> {s.complete} of {s.actions} actions complete{" "}
        <button type="button" onClick={reload}>
          Refresh
        </button>{" "}
        <Action
          label="Dematerialize"
          danger
          confirm="Dematerialize? The nodes are recycled."
          run={(a) => a.dematerialize(project, experiment, realization)}
          done={reload}
        />
      </p>
      <Table head={["Facility", "Status", "Actions", "Infrapod", "Problems"]}>
        {s.facilities.map((f) => (
          <tr key={f.facility} data-testid={`mz-facility-${f.facility}`}>
            <td>{f.facility}</td>
            <td>
              <Badge value={f.status} />
            </td>
            <td>
              {f.complete + f.masked} / {f.actions}
              {f.masked > 0 && <span className="muted"> ({f.masked} masked)</span>}
            </td>
            <td>{f.infrapod ?? "—"}</td>
            <td className="small">
              {f.error !== undefined && <div className="error">{f.error}</div>}
              {f.failed.map((a) => (
                <div key={`${a.task}/${a.action}`}>
                  {a.kind} {a.target}: {a.error} ({a.attempts} attempts)
                </div>
              ))}
            </td>
          </tr>
        ))}
      </Table>
      {s.nodes.length > 0 && (
        <>
          <h3>Nodes</h3>
          <Table
            testId="mz-nodes"
            head={[
              "Node",
              "Resource",
              "Addresses",
              "Infranet",
              "Image",
              "Profile",
              "State",
              "Action",
              "Power",
              "Power control",
            ]}
          >
            {s.nodes.map((n) => (
              <tr key={n.node} data-testid={`mz-node-${n.node}`} data-power={n.power}>
                <td>{n.node}</td>
                <td>
                  {n.facility}/{n.resource}
                </td>
                <td data-field="addresses">
                  {n.addresses?.length ? (
                    n.addresses.map((a) => <div key={a}>{a}</div>)
                  ) : (
                    <span className="muted">—</span>
                  )}
                </td>
                <td data-field="infranet">
                  {n.infranet ?? <span className="muted">—</span>}
                  {/* A node on a shared host: how to reach it from outside, through its host's NAT. */}
                  {n.control && (
                    <div className="small" data-field="control">
                      {describeControl(n.control)}
                    </div>
                  )}
                </td>
                <td data-field="image">{n.image ?? <span className="muted">facility default</span>}</td>
                <td data-field="profile" className="small">
                  {n.profile ? describeProfile(n.profile) : <span className="muted">—</span>}
                </td>
                <td>
                  {n.current}
                  {n.target !== n.current && ` → ${n.target}`}
                </td>
                <td>
                  <Badge value={n.action} /> {n.error !== undefined && <span className="error">{n.error}</span>}
                </td>
                <td>
                  {n.power === "" ? <span className="muted">—</span> : <Badge value={n.power} />}
                  {n.powerError !== undefined && <div className="error small">{n.powerError}</div>}
                </td>
                <td>{live && <NodePower node={n.node} done={reload} {...props} />}</td>
              </tr>
            ))}
          </Table>
        </>
      )}
      {s.links.length > 0 && (
        <>
          <h3>Links</h3>
          <LinksTable links={s.links} />
          {s.links.some((l) => l.external?.length) && (
            <p className="warning" data-testid="mz-external-warning">
              External links cross facilities: their traffic crosses shared wide-area links.
            </p>
          )}
          {live &&
            s.links
              .filter((l) => l.emulation !== undefined)
              .map((l) => (
                <EmulationChange
                  key={`${l.facility}/${l.link}`}
                  link={l.link}
                  emulation={l.emulation && xirEmulation(l.emulation)}
                  endpoints={endpoints.get(l.link) ?? []}
                  done={reload}
                  {...props}
                />
              ))}
        </>
      )}
    </div>
  );
}

/** One row per link (its own values), then one per direction set apart (what runs toward that node). */
function LinksTable({ links }: { links: MaterializationStatus["links"] }) {
  return (
    <Table
      testId="mz-links"
      head={["Link", "Toward", "Emulated", "Latency (one way)", "Loss", "Capacity", "Facility", "Action"]}
    >
      {links.flatMap((l) => {
        const key = `${l.facility}/${l.link}`;
        const status = (
          <>
            <td>
              {l.facility}
              {l.external?.length ? (
                <span className="warning" data-testid={`mz-link-${l.link}-external`}>
                  {" "}
                  EXTERNAL to {l.external.join(", ")}
                </span>
              ) : null}
            </td>
            <td>
              <Badge value={l.action} /> {l.error !== undefined && <span className="error">{l.error}</span>}
            </td>
          </>
        );
        if (l.emulation === undefined) {
          return [
            <tr key={key} data-testid={`mz-link-${l.link}`} data-emulated="no">
              <td>{l.link}</td>
              <td className="muted">—</td>
              <td>no</td>
              <td className="muted">—</td>
              <td className="muted">—</td>
              <td className="muted">—</td>
              {status}
            </tr>,
          ];
        }
        const rows = directionRows(xirEmulation(l.emulation));
        const apart = rows.length > 1;
        return rows.map((d) => {
          const own = (k: "latency" | "loss" | "capacity") => (d.own.includes(k) ? "own" : undefined);
          return d.toward === undefined ? (
            <tr key={key} data-testid={`mz-link-${l.link}`} data-emulated="yes">
              <td>{l.link}</td>
              <td>{apart ? "all directions" : "both ways"}</td>
              <td>yes</td>
              <td data-field="latency">{showLatency(d.values.latency)}</td>
              <td data-field="loss">{showLoss(d.values.loss)}</td>
              <td data-field="capacity">{showCapacity(d.values.capacity)}</td>
              {status}
            </tr>
          ) : (
            <tr key={`${key}→${d.toward}`} className="direction" data-testid={`mz-link-${l.link}-toward-${d.toward}`}>
              <td className="muted">↳ {l.link}</td>
              <td>toward {d.toward}</td>
              <td />
              <td data-field="latency" className={own("latency")}>
                {showLatency(d.values.latency)}
              </td>
              <td data-field="loss" className={own("loss")}>
                {showLoss(d.values.loss)}
              </td>
              <td data-field="capacity" className={own("capacity")}>
                {showCapacity(d.values.capacity)}
              </td>
              <td colSpan={2} />
            </tr>
          );
        });
      })}
    </Table>
  );
}

const POWER: { verb: PowerVerb; label: string; danger?: boolean; confirm?: (node: string) => string }[] = [
  { verb: "start", label: "Start" },
  { verb: "stop", label: "Stop" },
  { verb: "reboot", label: "Reboot" },
  {
    verb: "reimage",
    label: "Reimage",
    danger: true,
    confirm: (node) => `Reimage ${node}? Its disk is wiped back to its image; everything written to it is lost.`,
  },
];

/** A node's power buttons: one request at a time (all disabled while it runs), its failure shown. */
function NodePower({ node, done, project, experiment, realization }: Props & { node: string; done: () => void }) {
  const [busy, setBusy] = useState<PowerVerb | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const run = (verb: PowerVerb, confirm?: string) => {
    if (confirm !== undefined && !window.confirm(confirm)) return;
    setBusy(verb);
    setError(undefined);
    call((a) => a.nodePower(project, experiment, realization, node, verb)).then(
      () => {
        setBusy(undefined);
        done();
      },
      (e: unknown) => {
        setBusy(undefined);
        setError(e);
        done();
      },
    );
  };
  return (
    <div className="power" data-testid={`power-${node}`} data-busy={busy ?? ""}>
      <span className="buttons">
        {POWER.map((p) => (
          <button
            key={p.verb}
            type="button"
            className={p.danger ? "danger" : undefined}
            disabled={busy !== undefined}
            aria-label={`${p.label} ${node}`}
            onClick={() => run(p.verb, p.confirm?.(node))}
          >
            {busy === p.verb ? `${p.label}…` : p.label}
          </button>
        ))}
      </span>
      {error !== undefined && <ErrorBox error={error} />}
    </div>
  );
}

const EMPTY: EmulationForm = { latency: "", loss: "", capacity: "", toward: "" };

/** Changes an emulated link at runtime: empty fields keep their values; every direction or toward one node. */
function EmulationChange({
  link,
  emulation,
  endpoints,
  done,
  project,
  experiment,
  realization,
}: Props & { link: string; emulation: LinkEmulation | undefined; endpoints: string[]; done: () => void }) {
  const id = useId();
  const [form, setForm] = useState<EmulationForm>(EMPTY);
  const [invalid, setInvalid] = useState<Partial<Record<string, string>>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [applied, setApplied] = useState<string | undefined>(undefined);
  const set = (k: keyof EmulationForm) => (ev: { target: { value: string } }) => {
    setForm({ ...form, [k]: ev.target.value });
    setApplied(undefined);
  };
  const submit = (ev: FormEvent) => {
    ev.preventDefault();
    setError(undefined);
    setApplied(undefined);
    const c = emulationChange(form);
    if ("errors" in c) {
      setInvalid(c.errors);
      return;
    }
    setInvalid({});
    setBusy(true);
    call((a) => a.setEmulation(project, experiment, realization, link, c.change, c.toward)).then(
      () => {
        setBusy(false);
        setForm({ ...EMPTY, toward: form.toward });
        setApplied(c.toward === undefined ? "applied in every direction" : `applied toward ${c.toward}`);
        done();
      },
      (e: unknown) => {
        setBusy(false);
        setError(e);
      },
    );
  };
  const field = (k: "latency" | "loss" | "capacity", label: string, unit: string, hint: string) => (
    <label htmlFor={`${id}-${k}`}>
      {label}{" "}
      <input
        id={`${id}-${k}`}
        name={k}
        inputMode="decimal"
        size={7}
        placeholder={hint}
        value={form[k]}
        onChange={set(k)}
        aria-invalid={invalid[k] !== undefined}
        aria-describedby={invalid[k] !== undefined ? `${id}-errors` : undefined}
        aria-label={`${link} ${label.toLowerCase()} (${unit})`}
      />{" "}
      <span className="muted">{unit}</span>
    </label>
  );
  const messages = Object.values(invalid).filter((m): m is string => m !== undefined);
  return (
    <details className="emulation-change" data-testid={`emulation-${link}`}>
      <summary>Change emulation of {link}</summary>
      <form className="inline" noValidate onSubmit={submit} aria-label={`change emulation of ${link}`}>
        {field("latency", "Latency", "ms", "10")}
        {field("loss", "Loss", "%", "0.5")}
        {field("capacity", "Capacity", "Mbit/s", "100")}
        <label htmlFor={`${id}-toward`}>
          Direction{" "}
          <select
            id={`${id}-toward`}
            name="toward"
            value={form.toward}
            onChange={set("toward")}
            aria-label={`${link} direction`}
          >
            <option value="">all directions</option>
            {directionChoices(endpoints, emulation).map((n) => (
              <option key={n} value={n}>
                toward {n}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Applying…" : "Apply"}
        </button>
      </form>
      <p className="muted small">
        Empty fields keep their values. Latency is one way (a round trip is twice it). A change in every direction
        replaces what directions set apart had for that field.
      </p>
      {messages.length > 0 && (
        <ul className="error" role="alert" id={`${id}-errors`} data-testid="emulation-invalid">
          {messages.map((m) => (
            <li key={m}>{m}</li>
          ))}
        </ul>
      )}
      {error !== undefined && <ErrorBox error={error} />}
      {applied !== undefined && (
        <p className="small" role="status">
          {applied}
        </p>
      )}
    </details>
  );
}
