/** XDCs of a project (list, new, delete, how to ssh in) and the user's SSH keys. */
import { useState } from "react";
import { type Api, call, type SshKey, type User, type Xdc } from "../api.ts";
import { Action, ErrorBox, Show, Table, useCall, useLoad, When } from "../parts.tsx";

/** The project's XDCs: members see them, maintainers make and delete them (the portal decides; errors show). */
export function XdcSection({ project }: { project: string }) {
  const xdcs = useLoad((a: Api) => a.xdcs(project), `xdcs/${project}`);
  return (
    <>
      <h2>XDCs</h2>
      <p className="muted small">
        Experiment development containers: your project's shell, with <code>/home</code> and{" "}
        <code>/proj/{project}</code>. From a terminal: <code>mrg xdc ssh x0.{project}</code>, or{" "}
        <code>mrg xdc ssh-config &gt;&gt; ~/.ssh/config</code> then <code>ssh x0-{project}</code> (your keys: SSH keys
        page). Attached to a materialization, its nodes answer by name in the XDC (<code>ping c0</code>,{" "}
        <code>ssh c0</code>).
      </p>
      <Show loaded={xdcs}>
        {(list: Xdc[]) => (
          <>
            {list.length === 0 ? (
              <p className="muted">No XDCs yet.</p>
            ) : (
              <Table testId="xdcs" head={["XDC", "State", "ssh", "Jupyter", "Attached to", "Creator", "Created", ""]}>
                {list.map((x) => (
                  <tr key={x.id} data-xdc={x.id}>
                    <td>{x.id}</td>
                    <td>{x.state}</td>
                    <td>
                      <code>ssh {x.hostname}</code>
                    </td>
                    <td>{x.jupyter ? <OpenJupyter xdc={x} /> : "no"}</td>
                    <td data-testid="attachment">
                      {x.attached ? (
                        <>
                          <code>{x.attached}</code>{" "}
                          <Action
                            label="Detach"
                            run={(a) => a.detachXdc(project, x.name)}
                            done={() => xdcs.state === "ready" && xdcs.reload()}
                          />
                        </>
                      ) : (
                        <AttachXdc xdc={x} done={() => xdcs.state === "ready" && xdcs.reload()} />
                      )}
                    </td>
                    <td>{x.creator}</td>
                    <td>
                      <When time={x.created} />
                    </td>
                    <td>
                      <Action
                        label="Delete"
                        danger
                        confirm={`Delete ${x.id}? Everything in it but /home and /proj goes.`}
                        run={(a) => a.deleteXdc(project, x.name)}
                        done={() => xdcs.state === "ready" && xdcs.reload()}
                      />
                    </td>
                  </tr>
                ))}
              </Table>
            )}
            <NewXdc project={project} done={() => xdcs.state === "ready" && xdcs.reload()} />
          </>
        )}
      </Show>
    </>
  );
}

/**
 * Jupyter through the portal's proxy: the portal first sets this browser's cookie for the XDC's proxy path
 * (a page opened by a link carries no Authorization header), then the tab goes there. The tab opens at the
 * click: a window opened after an await is a popup the browser blocks.
 */
function OpenJupyter({ xdc }: { xdc: Xdc }) {
  const [error, setError] = useState<unknown>(undefined);
  return (
    <>
      <button
        type="button"
        onClick={() => {
          setError(undefined);
          const tab = window.open("about:blank", "_blank");
          call((a) => a.openJupyter(xdc.project, xdc.name)).then(
            ({ url }) => {
              if (tab === null) {
                window.location.assign(url);
                return;
              }
              tab.opener = null;
              tab.location.href = url;
            },
            (e: unknown) => {
              tab?.close();
              setError(e);
            },
          );
        }}
      >
        Open Jupyter
      </button>
      {error !== undefined && <ErrorBox error={error} />}
    </>
  );
}

/** Attach to a materialization of the project, named `realization.experiment.project` (what `mrg xdc attach` takes). */
function AttachXdc({ xdc, done }: { xdc: Xdc; done: () => void }) {
  const [mz, setMz] = useState("");
  const { busy, error, start } = useCall();
  return (
    <form
      className="inline"
      data-testid="attach-xdc"
      onSubmit={(ev) => {
        ev.preventDefault();
        start(
          (a) => a.attachXdc(xdc.project, xdc.name, mz.trim()),
          () => {
            setMz("");
            done();
          },
        );
      }}
    >
      <input
        value={mz}
        onChange={(ev) => setMz(ev.target.value)}
        placeholder={`r1.exp.${xdc.project}`}
        aria-label="materialization"
        required
      />
      <button type="submit" disabled={busy}>
        {busy ? "Attaching…" : "Attach"}
      </button>
      {error !== undefined && <ErrorBox error={error} />}
    </form>
  );
}

function NewXdc({ project, done }: { project: string; done: () => void }) {
  const [name, setName] = useState("");
  const [jupyter, setJupyter] = useState(false);
  const { busy, error, start } = useCall();
  return (
    <form
      className="inline"
      data-testid="new-xdc"
      onSubmit={(ev) => {
        ev.preventDefault();
        start(
          (a) => a.createXdc(project, { name, ...(jupyter ? { jupyter } : {}) }),
          () => {
            setName("");
            done();
          },
        );
      }}
    >
      <input
        value={name}
        onChange={(ev) => setName(ev.target.value)}
        placeholder="new XDC name (x0)"
        pattern="[a-z][a-z0-9]{0,31}"
        required
      />
      <label>
        <input type="checkbox" checked={jupyter} onChange={(ev) => setJupyter(ev.target.checked)} /> Jupyter
      </label>
      <button type="submit" disabled={busy}>
        {busy ? "Creating…" : "Create XDC"}
      </button>
      {error !== undefined && <ErrorBox error={error} />}
    </form>
  );
}

/** The signed-in user's SSH public keys: what the jump host and their XDCs let in. */
export function KeysPage() {
  const data = useLoad(async (a: Api) => {
    const me: User = await a.whoami();
    return { me, keys: await a.keys(me.name) };
  }, "keys");
  const [text, setText] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  return (
    <section>
      <h1>SSH keys</h1>
      <p className="muted small">
        Public keys only (<code>~/.ssh/id_ed25519.pub</code>; <code>mrg keys add</code> does the same). The jump host
        and the XDCs of your projects let these keys in.
      </p>
      <Show loaded={data}>
        {({ me, keys }: { me: User; keys: SshKey[] }) => (
          <>
            {keys.length === 0 ? (
              <p className="muted">No keys yet.</p>
            ) : (
              <Table testId="keys" head={["Fingerprint (SHA256)", "Key", "Added", ""]}>
                {keys.map((k) => (
                  <tr key={k.fingerprint} data-key={k.fingerprint}>
                    <td>
                      <code>{k.fingerprint}</code>
                    </td>
                    <td className="small">
                      {k.key.split(" ")[0]} …{k.key.split(" ")[2] ?? ""}
                    </td>
                    <td>
                      <When time={k.created} />
                    </td>
                    <td>
                      <Action
                        label="Delete"
                        danger
                        run={(a) => a.deleteKey(me.name, k.fingerprint)}
                        done={() => data.state === "ready" && data.reload()}
                      />
                    </td>
                  </tr>
                ))}
              </Table>
            )}
            <form
              data-testid="new-key"
              onSubmit={(ev) => {
                ev.preventDefault();
                setError(undefined);
                call((a) => a.addKey(me.name, text.trim())).then(
                  () => {
                    setText("");
                    if (data.state === "ready") data.reload();
                  },
                  (e: unknown) => setError(e),
                );
              }}
            >
              <textarea
                value={text}
                onChange={(ev) => setText(ev.target.value)}
                placeholder="ssh-ed25519 AAAA… you@laptop"
                rows={3}
                cols={80}
                required
              />
              <button type="submit">Add key</button>
              {error !== undefined && <ErrorBox error={error} />}
            </form>
          </>
        )}
      </Show>
    </section>
  );
}
