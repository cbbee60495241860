/**
 * The shell: finishes sign-in on /callback, asks to sign in when there is no
 * session, otherwise shows the header (who, navigation, sign out) and the page.
 */
import { useEffect, useState } from "react";
import { call, describeError, publicApi, type User } from "./api.ts";
import { Notices } from "./Notices.tsx";
import { AdminPage } from "./pages/Admin.tsx";
import { ExperimentPage } from "./pages/Experiment.tsx";
import { ProjectPage, ProjectsPage } from "./pages/Projects.tsx";
import { RealizationPage, RealizationsPage } from "./pages/Realization.tsx";
import { StoragePage } from "./pages/Storage.tsx";
import { KeysPage } from "./pages/Xdcs.tsx";
import { ErrorBox, Link } from "./parts.tsx";
import { navigate, type Route, useRoute } from "./route.ts";
import { beginSignIn, completeSignIn, currentSession, sessionExpired, signOut } from "./session.ts";

export function App() {
  const route = useRoute();
  if (route.page === "callback") return <Callback />;
  if (currentSession() === undefined) return <SignIn />;
  return <Signed route={route} />;
}

function Callback() {
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    completeSignIn(location.search).then(
      (to) => navigate(to.startsWith("/ui/") ? to : "/ui/", true),
      (e: unknown) => setError(describeError(e)),
    );
  }, []);
  return (
    <main className="center">
      {error === undefined ? (
        <p>Signing in…</p>
      ) : (
        <>
          <div className="error" role="alert">
            {error}
          </div>
          <button type="button" onClick={() => void beginSignIn("/ui/")}>
            Sign in again
          </button>
        </>
      )}
    </main>
  );
}

function SignIn() {
  const [error, setError] = useState<string | undefined>(undefined);
  const expired = sessionExpired();
  return (
    <main className="center">
      <h1>Merge</h1>
      {expired && (
        <div className="error" role="alert" data-error="session-expired">
          Session expired: sign in again.
        </div>
      )}
      <p>A network testbed portal: model experiments, realize them on testbed facilities, run them.</p>
      <button
        type="button"
        data-testid="sign-in"
        onClick={() => {
          beginSignIn(location.pathname + location.search).catch((e: unknown) => setError(describeError(e)));
        }}
      >
        Sign in
      </button>
      {error !== undefined && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      <SignUp />
    </main>
  );
}

/** Registration beside sign-in: the account starts inactive until an administrator activates it. */
function SignUp() {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [created, setCreated] = useState<string | undefined>(undefined);
  if (created !== undefined) {
    return (
      <p className="notice" role="status" data-testid="signed-up">
        Account <b>{created}</b> created. An administrator activates it (<code>mergectl user activate {created}</code>
        ); then sign in.
      </p>
    );
  }
  if (!open) {
    return (
      <p className="muted small">
        No account?{" "}
        <button type="button" className="link" data-testid="sign-up" onClick={() => setOpen(true)}>
          Create one
        </button>{" "}
        (or <code>mrg register</code>); an administrator activates it.
      </p>
    );
  }
  return (
    <form
      className="sign-up"
      data-testid="sign-up-form"
      onSubmit={(ev) => {
        ev.preventDefault();
        const f = new FormData(ev.currentTarget);
        const field = (k: string) => String(f.get(k) ?? "").trim();
        const name = field("name");
        const fullName = field("fullName");
        publicApi()
          .register({
            name,
            email: field("email"),
            password: String(f.get("password") ?? ""),
            ...(fullName ? { fullName } : {}),
          })
          .then(
            () => setCreated(name),
            (e: unknown) => setError(describeError(e)),
          );
      }}
    >
      <h2>Create an account</h2>
      <label>
        User name <input name="name" required pattern="[a-z][a-z0-9]{0,31}" autoComplete="username" />
      </label>
      <label>
        Email <input name="email" type="email" required autoComplete="email" />
      </label>
      <label>
        Full name <input name="fullName" autoComplete="name" />
      </label>
      <label>
        Password <input name="password" type="password" required minLength={8} autoComplete="new-password" />
      </label>
      <button type="submit">Create account</button>
      {error !== undefined && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
    </form>
  );
}

function Signed({ route }: { route: Route }) {
  const [me, setMe] = useState<User | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    call((a) => a.whoami()).then(setMe, setError);
  }, []);
  return (
    <>
      <header>
        <Link to={{ page: "projects" }} className="brand">
          Merge
        </Link>
        <nav>
          <Link to={{ page: "projects" }}>Projects</Link>
          <Link to={{ page: "realizations" }}>Realizations</Link>
          <Link to={{ page: "keys" }}>SSH keys</Link>
          <Link to={{ page: "storage" }}>Storage</Link>
          {me?.admin === true && <Link to={{ page: "admin" }}>Admin</Link>}
        </nav>
        <Notices />
        <span className="who" data-testid="whoami">
          {me?.name}
        </span>
        <button type="button" className="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>
        {error !== undefined ? <ErrorBox error={error} /> : <Page route={route} admin={me?.admin === true} />}
      </main>
    </>
  );
}

function Page({ route, admin }: { route: Route; admin: boolean }) {
  switch (route.page) {
    case "projects":
      return <ProjectsPage />;
    case "project":
      return <ProjectPage key={route.project} project={route.project} />;
    case "experiment":
      return <ExperimentPage {...route} />;
    case "realization":
      return <RealizationPage {...route} />;
    case "realizations":
      return <RealizationsPage />;
    case "keys":
      return <KeysPage />;
    case "storage":
      return <StoragePage />;
    case "admin":
      return admin ? <AdminPage /> : <p className="muted">Only portal administrators see this page.</p>;
    case "callback":
      return null;
    case "missing":
      return <p className="error">No such page: {route.path}</p>;
  }
}
