/**
 * One experiment: its revision stack (newest first), the selected revision's
 * compile status, diagnostics, topology and source, its realizations, and
 * forms to push a model and to realize a revision.
 */

import type { Experiment as Xir } from "@merge/xir/browser";
import { lazy, Suspense, useState } from "react";
import type { Api, Experiment, Realization, Revision, RevisionDetail } from "../api.ts";
import { Badge, ErrorBox, Link, Show, useCall, useLoad, When } from "../parts.tsx";
import { navigate, pathOf } from "../route.ts";

const TopologyView = lazy(() => import("../TopologyView.tsx"));

interface Props {
  project: string;
  experiment: string;
  revision?: number;
}

export function ExperimentPage({ project, experiment, revision }: Props) {
  const data = useLoad(async (a: Api) => {
    const [exp, revisions, realizations] = await Promise.all([
      a.experiment(project, experiment),
      a.revisions(project, experiment),
      a.realizations(project, experiment),
    ]);
    return { exp, revisions, realizations };
  }, `experiment/${project}/${experiment}`);
  return (
    <section>
      <p className="crumbs">
        <Link to={{ page: "projects" }}>Projects</Link> / <Link to={{ page: "project", project }}>{project}</Link> /
      </p>
      <Show loaded={data}>
        {({
          exp,
          revisions,
          realizations,
        }: {
          exp: Experiment;
          revisions: Revision[];
          realizations: Realization[];
        }) => {
          const reload = data.state === "ready" ? data.reload : () => {};
          const newest = [...revisions].sort((x, y) => y.number - x.number);
          const selected = revision ?? newest[0]?.number;
          const selectedRev = newest.find((r) => r.number === selected);
          return (
            <>
              <h1>
                {exp.name}.{exp.project} <Badge value={exp.visibility} />
              </h1>
              {exp.description && <p>{exp.description}</p>}
              <div className="columns">
                <div className="side">
                  <h2>Revisions</h2>
                  {newest.length === 0 ? (
                    <p className="muted">No revisions: push a model.</p>
                  ) : (
                    <ol className="stack" data-testid="revisions">
                      {newest.map((r) => (
                        <li key={r.number} className={r.number === selected ? "selected" : undefined}>
                          <Link to={{ page: "experiment", project, experiment, revision: r.number }}>#{r.number}</Link>{" "}
                          <Badge value={r.status} /> {r.nodes} nodes, {r.links} links
                          <div className="muted small">
                            {r.lang} by {r.pushedBy}, <When time={r.created} />
                          </div>
                        </li>
                      ))}
                    </ol>
                  )}
                  <PushModel project={project} experiment={experiment} onDone={reload} />
                  <h2>Realizations</h2>
                  <RealizationList project={project} experiment={experiment} realizations={realizations} />
                  {selectedRev?.status === "compiled" && (
                    <Realize project={project} experiment={experiment} revision={selectedRev.number} onDone={reload} />
                  )}
                  {selectedRev?.status === "error" && (
                    <p className="muted">
                      Revision #{selectedRev.number} did not compile: pick a compiled one to realize.
                    </p>
                  )}
                </div>
                <div className="main">
                  {selected !== undefined && (
                    <RevisionView project={project} experiment={experiment} revision={selected} />
                  )}
                </div>
              </div>
            </>
          );
        }}
      </Show>
    </section>
  );
}

function RevisionView({ project, experiment, revision }: { project: string; experiment: string; revision: number }) {
  const detail = useLoad((a) => a.revision(project, experiment, revision), `rev/${project}/${experiment}/${revision}`);
  return (
    <Show loaded={detail}>
      {(d: RevisionDetail) => (
        <div data-testid="revision">
          <h2>
            Revision #{d.revision.number} <Badge value={d.revision.status} />
          </h2>
          {d.revision.errors.length > 0 && (
            <ul className="diagnostics" data-testid="diagnostics">
              {d.revision.errors.map((e) => (
                <li key={`${e.line}:${e.column}:${e.field}:${e.message}`}>
                  {e.line !== undefined && (
                    <span className="where">
                      line {e.line}
                      {e.column !== undefined ? `:${e.column}` : ""}{" "}
                    </span>
                  )}
                  {e.field !== undefined && <span className="where">{e.field} </span>}
                  {e.message}
                </li>
              ))}
            </ul>
          )}
          {d.xir !== null && d.xir !== undefined ? (
            <Suspense fallback={<p className="muted">Loading the graph view…</p>}>
              <TopologyView xir={d.xir as Xir} />
            </Suspense>
          ) : (
            <p className="muted">This revision did not compile: no topology.</p>
          )}
          <details>
            <summary>
              Source ({d.revision.lang}, {d.revision.sourceBytes} bytes)
            </summary>
            <pre className="source">{d.source}</pre>
          </details>
        </div>
      )}
    </Show>
  );
}

function RealizationList({
  project,
  experiment,
  realizations,
}: {
  project: string;
  experiment: string;
  realizations: Realization[];
}) {
  if (realizations.length === 0) return <p className="muted">None.</p>;
  return (
    <ul className="plain" data-testid="realizations">
      {realizations.map((r) => (
        <li key={r.name}>
          <Link to={{ page: "realization", project, experiment, realization: r.name }}>{r.name}</Link>{" "}
          <Badge value={r.state} /> <span className="muted">rev {r.revision}</span>
        </li>
      ))}
    </ul>
  );
}

function Realize({
  project,
  experiment,
  revision,
  onDone,
}: {
  project: string;
  experiment: string;
  revision: number;
  onDone: () => void;
}) {
  const [name, setName] = useState("");
  const { busy, error, start } = useCall();
  return (
    <form
      className="inline"
      onSubmit={(ev) => {
        ev.preventDefault();
        start(
          (a) => a.realize(project, experiment, { name, revision }),
          (r) => {
            onDone();
            navigate(pathOf({ page: "realization", project, experiment, realization: r.name }));
          },
        );
      }}
    >
      <input
        value={name}
        onChange={(ev) => setName(ev.target.value)}
        placeholder="realization name"
        aria-label="realization name"
        required
      />
      <button type="submit" disabled={busy}>
        {busy ? "Realizing…" : `Realize #${revision}`}
      </button>
      {error !== undefined && <ErrorBox error={error} />}
    </form>
  );
}

function PushModel({ project, experiment, onDone }: { project: string; experiment: string; onDone: () => void }) {
  const [source, setSource] = useState("");
  const [lang, setLang] = useState<"ts" | "py" | "xir">("ts");
  const { busy, error, start } = useCall();
  return (
    <details className="push">
      <summary>Push a model</summary>
      <form
        onSubmit={(ev) => {
          ev.preventDefault();
          start(
            (a) => a.push(project, experiment, source, lang),
            (r) => {
              setSource("");
              onDone();
              navigate(pathOf({ page: "experiment", project, experiment, revision: r.number }));
            },
          );
        }}
      >
        <select value={lang} onChange={(ev) => setLang(ev.target.value as "ts" | "py" | "xir")} aria-label="language">
          <option value="ts">model.ts</option>
          <option value="py">model.py</option>
          <option value="xir">XIR JSON</option>
        </select>
        <textarea value={source} onChange={(ev) => setSource(ev.target.value)} rows={8} required />
        <button type="submit" disabled={busy}>
          {busy ? "Compiling…" : "Push"}
        </button>
        {error !== undefined && <ErrorBox error={error} />}
      </form>
    </details>
  );
}
