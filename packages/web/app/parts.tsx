/** Small shared pieces: links, loading and error states, badges. */
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

export function Badge({ value }: { value: string }) {
  return <span className={`badge badge-${value.replace(/[^a-z]/g, "")}`}>{value}</span>;
}

export function When({ time }: { time: string | null }) {
  if (time === null) return <span className="muted">never</span>;
  const d = new Date(time);
  return <time dateTime={time}>{Number.isNaN(d.getTime()) ? time : d.toLocaleString()}</time>;
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
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  return (
    <span className="action">
      <button
        type="button"
        className={danger ? "danger" : undefined}
        disabled={busy}
        onClick={() => {
          if (confirm !== undefined && !window.confirm(confirm)) return;
          setBusy(true);
          setError(undefined);
          call(run).then(
            () => {
              setBusy(false);
              done();
            },
            (e: unknown) => {
              setBusy(false);
              setError(e);
            },
          );
        }}
      >
        {busy ? `${label}…` : label}
      </button>
      {error !== undefined && <ErrorBox error={error} />}
    </span>
  );
}
