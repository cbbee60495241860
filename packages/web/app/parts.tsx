/** Small shared pieces: links, loading and error states, badges, tables. */
import { type ReactNode, useCallback, useEffect, useState } from "react";
import { type Api, call, describeError, SessionExpired } from "./api.ts";
import { navigate, pathOf, type Route } from "./route.ts";
import { beginSignIn } from "./session.ts";

export function Link({ to, children, className }: { to: Route; children: ReactNode; className?: string }) {
  const href = pathOf(to);
  return (
    <a
      href={href}
      className={className}
      onClick={(ev) => {
        if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
        ev.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}

export type Loaded<T> =
  | { state: "loading" }
  | { state: "error"; error: unknown }
  | { state: "ready"; data: T; reload: () => void };

/** Loads from the API when `key` changes; `reload()` fetches again without showing "loading". */
export function useLoad<T>(f: (a: Api) => Promise<T>, key: string): Loaded<T> {
  const [result, setResult] = useState<Loaded<T>>({ state: "loading" });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  // biome-ignore lint/correctness/useExhaustiveDependencies: `f` is re-created every render; `key` names what it loads.
  useEffect(() => {
    let live = true;
    call(f).then(
      (data) => live && setResult({ state: "ready", data, reload }),
      (error: unknown) => live && setResult({ state: "error", error }),
    );
    return () => {
      live = false;
    };
  }, [key, tick]);
  return result;
}

export function ErrorBox({ error }: { error: unknown }) {
  if (error instanceof SessionExpired) {
    return (
      <div className="error" role="alert" data-error="session-expired">
        Session expired: sign in again.{" "}
        <button type="button" onClick={() => void beginSignIn(location.pathname)}>
          Sign in
        </button>
      </div>
    );
  }
  return (
    <div className="error" role="alert">
      {describeError(error)}
    </div>
  );
}

/** Renders `children(data)` once loaded; the loading and error states otherwise. */
export function Show<T>({ loaded, children }: { loaded: Loaded<T>; children: (data: T) => ReactNode }) {
  if (loaded.state === "loading") return <p className="muted">Loading…</p>;
  if (loaded.state === "error") return <ErrorBox error={loaded.error} />;
  return <>{children(loaded.data)}</>;
}

/** A table under a row of column headings; `children` are its body's rows. */
export function Table({ head, testId, children }: { head: string[]; testId?: string; children: ReactNode }) {
  return (
    <table data-testid={testId}>
      <thead>
        <tr>
          {head.map((h, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: the headings are fixed; an empty one may repeat
            <th key={i}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}

export function Badge({ value }: { value: string }) {
  return <span className={`badge badge-${value.replace(/[^a-z]/g, "")}`}>{value}</span>;
}

export function When({ time }: { time: string | null }) {
  if (time === null) return <span className="muted">never</span>;
  const d = new Date(time);
  return <time dateTime={time}>{Number.isNaN(d.getTime()) ? time : d.toLocaleString()}</time>;
}

/**
 * An API call a form or button starts: `busy` while it runs, its failure kept
 * in `error` (to show), `then` given its result.
 */
export function useCall() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const start = <T,>(run: (a: Api) => Promise<T>, then: (r: T) => void) => {
    setBusy(true);
    setError(undefined);
    call(run).then(
      (r) => {
        setBusy(false);
        then(r);
      },
      (e: unknown) => {
        setBusy(false);
        setError(e);
      },
    );
  };
  return { busy, error, start };
}

/** A button that runs an API action, shows its failure, and then calls `done`. */
export function Action({
  label,
  run,
  done,
  danger,
  confirm,
}: {
  label: string;
  run: (a: Api) => Promise<unknown>;
  done: () => void;
  danger?: boolean;
  confirm?: string;
}) {
  const { busy, error, start } = useCall();
  return (
    <span className="action">
      <button
        type="button"
        className={danger ? "danger" : undefined}
        disabled={busy}
        onClick={() => {
          if (confirm !== undefined && !window.confirm(confirm)) return;
          start(run, done);
        }}
      >
        {busy ? `${label}…` : label}
      </button>
      {error !== undefined && <ErrorBox error={error} />}
    </span>
  );
}
