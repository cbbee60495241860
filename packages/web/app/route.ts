/**
 * The UI's addresses (all under /ui/, plus the OIDC /callback) and a tiny
 * History-API router: parse a path into a Route, build a path from one.
 */
import { useEffect, useState } from "react";

export type Route =
  | { page: "projects" }
  | { page: "project"; project: string }
  | { page: "experiment"; project: string; experiment: string; revision?: number }
  | { page: "realization"; project: string; experiment: string; realization: string }
  | { page: "realizations" }
  | { page: "admin" }
  | { page: "keys" }
  | { page: "storage" }
  | { page: "callback" }
  | { page: "missing"; path: string };

const seg = encodeURIComponent;

export function parseRoute(pathname: string): Route {
  if (pathname === "/callback") return { page: "callback" };
  const parts = pathname
    .replace(/^\/ui\/?/, "")
    .split("/")
    .filter((p) => p !== "")
    .map(decodeURIComponent);
  const [a, p, b, e, c, x] = parts;
  if (parts.length === 0) return { page: "projects" };
  if (parts.length === 1 && a === "realizations") return { page: "realizations" };
  if (parts.length === 1 && a === "admin") return { page: "admin" };
  if (parts.length === 1 && a === "keys") return { page: "keys" };
  if (parts.length === 1 && a === "storage") return { page: "storage" };
  if (a === "projects" && p !== undefined) {
    if (parts.length === 2) return { page: "project", project: p };
    if (b === "experiments" && e !== undefined) {
      if (parts.length === 4) return { page: "experiment", project: p, experiment: e };
      if (parts.length === 6 && c === "revisions" && x !== undefined && /^[1-9][0-9]*$/.test(x)) {
        return { page: "experiment", project: p, experiment: e, revision: Number(x) };
      }
      if (parts.length === 6 && c === "realizations" && x !== undefined) {
        return { page: "realization", project: p, experiment: e, realization: x };
      }
    }
  }
  return { page: "missing", path: pathname };
}

export function pathOf(r: Route): string {
  switch (r.page) {
    case "projects":
      return "/ui/";
    case "project":
      return `/ui/projects/${seg(r.project)}`;
    case "experiment":
      return `/ui/projects/${seg(r.project)}/experiments/${seg(r.experiment)}${r.revision === undefined ? "" : `/revisions/${r.revision}`}`;
    case "realization":
      return `/ui/projects/${seg(r.project)}/experiments/${seg(r.experiment)}/realizations/${seg(r.realization)}`;
    case "realizations":
      return "/ui/realizations";
    case "admin":
      return "/ui/admin";
    case "keys":
      return "/ui/keys";
    case "storage":
      return "/ui/storage";
    case "callback":
      return "/callback";
    case "missing":
      return r.path;
  }
}

const listeners = new Set<() => void>();

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  for (const l of listeners) l();
}

/** The current route; re-renders on navigation and on back/forward. */
export function useRoute(): Route {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return parseRoute(path);
}
