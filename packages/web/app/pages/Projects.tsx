/** The projects the user may see, and one project's experiments. */
import { useState } from "react";
import { type Api, call, type Experiment, type Project } from "../api.ts";
import { Badge, ErrorBox, Link, Show, Table, useLoad, When } from "../parts.tsx";
import { navigate, pathOf } from "../route.ts";
import { XdcSection } from "./Xdcs.tsx";

export function ProjectsPage() {
  const projects = useLoad((a) => a.projects(), "projects");
  return (
    <section>
      <h1>Projects</h1>
      <Show loaded={projects}>
        {(ps: Project[]) =>
          ps.length === 0 ? (
            <p className="muted">No projects yet.</p>
          ) : (
            <Table testId="projects" head={["Project", "Description", "Visibility", "Creator", "Created"]}>
              {ps.map((p) => (
                <tr key={p.name}>
                  <td>
                    <Link to={{ page: "project", project: p.name }}>{p.name}</Link>
                    {p.personal && <span className="muted"> (personal)</span>}
                  </td>
                  <td>{p.description}</td>
                  <td>
                    <Badge value={p.visibility} />
                  </td>
                  <td>{p.creator}</td>
                  <td>
                    <When time={p.created} />
                  </td>
                </tr>
              ))}
            </Table>
          )
        }
      </Show>
    </section>
  );
}

export function ProjectPage({ project }: { project: string }) {
  const data = useLoad(
    async (a: Api) => ({ project: await a.project(project), experiments: await a.experiments(project) }),
    `project/${project}`,
  );
  return (
    <section>
      <p className="crumbs">
        <Link to={{ page: "projects" }}>Projects</Link> /
      </p>
      <Show loaded={data}>
        {({ project: p, experiments }: { project: Project; experiments: Experiment[] }) => (
          <>
            <h1>
              {p.name} <Badge value={p.visibility} />
            </h1>
            {p.description && <p>{p.description}</p>}
            <h2>Experiments</h2>
            {experiments.length === 0 ? (
              <p className="muted">No experiments yet.</p>
            ) : (
              <Table testId="experiments" head={["Experiment", "Description", "Revisions", "Visibility", "Creator"]}>
                {experiments.map((e) => (
                  <tr key={e.name}>
                    <td>
                      <Link to={{ page: "experiment", project: p.name, experiment: e.name }}>{e.name}</Link>
                    </td>
                    <td>{e.description}</td>
                    <td>{e.revisions}</td>
                    <td>
                      <Badge value={e.visibility} />
                    </td>
                    <td>{e.creator}</td>
                  </tr>
                ))}
              </Table>
            )}
            <NewExperiment project={p.name} />
            <XdcSection project={p.name} />
          </>
        )}
      </Show>
    </section>
  );
}

function NewExperiment({ project }: { project: string }) {
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  return (
    <form
      className="inline"
      onSubmit={(ev) => {
        ev.preventDefault();
        setError(undefined);
        call((a) => a.createExperiment(project, { name })).then(
          (e) => navigate(pathOf({ page: "experiment", project, experiment: e.name })),
          (e: unknown) => setError(e),
        );
      }}
    >
      <input value={name} onChange={(ev) => setName(ev.target.value)} placeholder="new experiment name" required />
      <button type="submit">Create experiment</button>
      {error !== undefined && <ErrorBox error={error} />}
    </form>
  );
}
