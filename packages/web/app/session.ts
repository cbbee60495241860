/**
 * Signing in: OAuth2 authorization code + PKCE against the portal's embedded
 * OIDC provider (client `merge-web`, redirect `<origin>/callback`). The browser
 * never sees a password (the provider's own page takes it); the access token
 * lives in sessionStorage only, so it ends with the tab.
 */
const CLIENT_ID = "merge-web";
const API_RESOURCE = "urn:merge:api";
const TOKEN_KEY = "merge.session";
const FLOW_KEY = "merge.signin";

export interface Session {
  token: string;
  /** ms since the epoch. */
  expires: number;
}

interface Flow {
  verifier: string;
  state: string;
  returnTo: string;
}

export function currentSession(): Session | undefined {
  const raw = sessionStorage.getItem(TOKEN_KEY);
  if (raw === null) return undefined;
  try {
    const s = JSON.parse(raw) as Session;
    if (typeof s.token !== "string" || typeof s.expires !== "number" || s.expires <= Date.now()) return undefined;
    return s;
  } catch {
    return undefined;
  }
}

const EXPIRED_KEY = "merge.expired";

/** Forgets the token; `expired` marks that the portal refused it, so the sign-in page can say why. */
export function endSession(expired = false): void {
  sessionStorage.removeItem(TOKEN_KEY);
  if (expired) sessionStorage.setItem(EXPIRED_KEY, "1");
}

/** Whether the last session ended by expiring (its token timed out or the portal refused it). */
export function sessionExpired(): boolean {
  return (
    sessionStorage.getItem(EXPIRED_KEY) !== null ||
    (sessionStorage.getItem(TOKEN_KEY) !== null && currentSession() === undefined)
  );
}

const redirectUri = () => `${location.origin}/callback`;

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** Sends the browser to the provider's sign-in page; it comes back to /callback. */
export async function beginSignIn(returnTo: string): Promise<void> {
  if (crypto.subtle === undefined) {
    throw new Error(
      "this page is not a secure context (use https, or localhost), so the browser cannot sign in safely",
    );
  }
  const verifier = randomString();
  const state = randomString();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const flow: Flow = { verifier, state, returnTo };
  sessionStorage.setItem(FLOW_KEY, JSON.stringify(flow));
  const q = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: "code",
    redirect_uri: redirectUri(),
    scope: "openid api",
    resource: API_RESOURCE,
    code_challenge: base64url(digest),
    code_challenge_method: "S256",
    state,
  });
  location.assign(`/oidc/auth?${q}`);
}

/**
 * Finishes sign-in on /callback: checks `state`, trades the code (with the PKCE
 * verifier) for an access token, and returns where the user was going.
 */
let completing: Promise<string> | undefined;

export function completeSignIn(search: string): Promise<string> {
  // Once per page load, however often the callback page renders.
  completing ??= exchange(search);
  return completing;
}

async function exchange(search: string): Promise<string> {
  const params = new URLSearchParams(search);
  const raw = sessionStorage.getItem(FLOW_KEY);
  sessionStorage.removeItem(FLOW_KEY);
  const error = params.get("error");
  if (error !== null) throw new Error(`sign-in failed: ${params.get("error_description") ?? error}`);
  const flow = raw === null ? undefined : (JSON.parse(raw) as Flow);
  if (flow === undefined || params.get("state") !== flow.state) {
    throw new Error("this sign-in response does not belong to a sign-in started in this tab; sign in again");
  }
  const code = params.get("code");
  if (code === null) throw new Error("the sign-in response has no authorization code; sign in again");
  // Through the UI's same-origin relay to the provider's token endpoint (see serve.ts).
  const res = await fetch("/ui/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri(),
      client_id: CLIENT_ID,
      code_verifier: flow.verifier,
      resource: API_RESOURCE,
    }),
  });
  const body = (await res.json().catch(() => ({}))) as {
    access_token?: string;
    expires_in?: number;
    error?: string;
    error_description?: string;
  };
  if (!res.ok || typeof body.access_token !== "string") {
    throw new Error(`sign-in failed: ${body.error_description ?? body.error ?? `HTTP ${res.status}`}`);
  }
  const session: Session = { token: body.access_token, expires: Date.now() + (body.expires_in ?? 3600) * 1000 };
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
  sessionStorage.removeItem(EXPIRED_KEY);
  return flow.returnTo;
}

/** Ends the provider's browser session too, so the next sign-in asks for the password again. */
export function signOut(): void {
  endSession();
  location.assign(`/oidc/session/end?client_id=${CLIENT_ID}`);
}
