// Talking to the server: the admin API with the session cookie (the
// browser sends it; the key itself never reaches JavaScript storage), the
// CSRF token on every change, and the environment's change events.

let csrfToken = null;

/** Remembers the session's CSRF token (kept in memory only). */
export function setCsrf(token) { csrfToken = token; }

/** An answer: status, headers and the JSON body (or null). */
export async function call(method, path, body, headers = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && csrfToken) init.headers['X-CSRF-Token'] = csrfToken;
  const resp = await fetch(path, init);
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { message: text }; }
  if (resp.status === 401 && path !== '/ui/api/session') {
    window.dispatchEvent(new CustomEvent('vexil:signed-out'));
  }
  return { status: resp.status, ok: resp.ok, headers: resp.headers, body: json };
}

/** Like `call`, but throws an Error with the API's message unless 2xx. */
export async function must(method, path, body, headers) {
  const r = await call(method, path, body, headers);
  if (!r.ok) {
    const err = new Error(r.body?.message || `request failed with status ${r.status}`);
    err.response = r;
    throw err;
  }
  return r.body;
}

const enc = encodeURIComponent;

/** Paths of the admin API. */
export const paths = {
  projects: () => '/api/v1/projects',
  environments: (p) => `/api/v1/projects/${enc(p)}/environments`,
  env: (p, e) => `/api/v1/projects/${enc(p)}/environments/${enc(e)}`,
  flags: (p, e) => `${paths.env(p, e)}/flags`,
  flag: (p, e, k) => `${paths.env(p, e)}/flags/${enc(k)}`,
  keys: () => '/api/v1/keys',
  evaluate: (p, e) => `/ui/api/projects/${enc(p)}/environments/${enc(e)}/evaluate`,
  events: (p, e) => `/ui/api/projects/${enc(p)}/environments/${enc(e)}/events`,
};

let source = null;
let followed = null;

/**
 * Follows one environment's versions: every new version is dispatched as a
 * `vexil:version` event on window ({project, env, version}).
 */
export function follow(project, env) {
  const want = `${project}/${env}`;
  if (followed === want && source) return;
  if (source) source.close();
  followed = want;
  source = new EventSource(paths.events(project, env));
  source.addEventListener('version', (ev) => {
    const { version } = JSON.parse(ev.data);
    window.dispatchEvent(new CustomEvent('vexil:version', { detail: { project, env, version } }));
  });
}

/** Stops following (sign-out). */
export function unfollow() {
  if (source) source.close();
  source = null; followed = null;
}
