// The UI's entry point: sign-in, the top bar with the project and
// environment switcher, and a router over location.hash that hands each
// page its part of the screen.

import { call, must, setCsrf, paths, follow, unfollow } from './api.js';
import { h, fill, field, show, announce } from './dom.js';
import { flagList, newFlag } from './flags.js';
import { flagPage } from './flag.js';
import { auditPage } from './audit.js';
import { keysPage } from './keys.js';
import { playground } from './playground.js';
import { segmentList, segmentPage } from './segments.js';

const state = { session: null, projects: [], envs: {}, pageCleanup: null };

function signInPage(message) {
  document.getElementById('top').hidden = true;
  unfollow();
  const key = h('input', { type: 'password', name: 'key', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert', id: 'signin-error' }, message || '');
  const form = h('form', { class: 'panel signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to Vexil'),
    h('p', { class: 'muted' }, 'Paste an admin key. It is exchanged for a session cookie and not kept in the browser.'),
    field('Admin key', key),
    error,
    h('button', { class: 'primary', type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const r = await call('POST', '/ui/api/session', { key: key.value });
    key.value = '';
    if (r.status !== 201) {
      error.textContent = r.body?.message ? `Sign-in refused: ${r.body.message}` : 'Sign-in refused';
      key.setAttribute('aria-invalid', 'true');
      key.focus();
      return;
    }
    await start(r.body);
  });
  show(form);
  key.focus();
}

async function signOut() {
  await call('DELETE', '/ui/api/session');
  setCsrf(null);
  state.session = null;
  routed = null;
  location.hash = '';
  signInPage('Signed out.');
}

async function loadProjects() {
  state.projects = (await must('GET', paths.projects())).items;
  for (const p of state.projects) {
    state.envs[p.key] = (await must('GET', paths.environments(p.key))).items;
  }
}

async function start(session) {
  state.session = session;
  setCsrf(session.csrfToken);
  await loadProjects();
  routed = null;
  if (!location.hash || location.hash === '#' || location.hash === '#/') {
    const p = state.projects[0];
    const e = state.envs[p?.key]?.[0];
    location.hash = p && e ? `#/p/${p.key}/e/${e.key}/flags` : '#/keys';
  }
  route();
}

/** The route named by the hash: its parts, decoded. */
function parse() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'p' && parts[2] === 'e') {
    return { project: parts[1], env: parts[3], page: parts[4] || 'flags', rest: parts.slice(5) };
  }
  return { page: parts[0] || 'keys', rest: parts.slice(1) };
}

function topBar(r) {
  const top = document.getElementById('top');
  top.hidden = false;
  const current = r.project ? r : lastEnv;
  const project = h('select', { id: 'project-switch', 'aria-label': 'Project' },
    state.projects.map((p) => h('option', { value: p.key, selected: p.key === current?.project }, p.name || p.key)));
  const envs = state.envs[current?.project] || [];
  const env = h('select', { id: 'env-switch', 'aria-label': 'Environment' },
    envs.map((e) => h('option', { value: e.key, selected: e.key === current?.env }, e.name || e.key)));
  project.addEventListener('change', () => {
    const first = state.envs[project.value]?.[0];
    location.hash = `#/p/${project.value}/e/${first?.key}/flags`;
  });
  env.addEventListener('change', () => {
    location.hash = `#/p/${project.value}/e/${env.value}/${r.project ? (r.page === 'playground' || r.page === 'audit' ? r.page : 'flags') : 'flags'}`;
  });
  const base = current ? `#/p/${current.project}/e/${current.env}` : null;
  const link = (href, label, page) => h('li', {}, h('a', { href, 'aria-current': r.page === page ? 'page' : null }, label));
  fill(top, 
    h('span', { class: 'brand' }, 'Vexil'),
    h('label', {}, 'Project', project),
    h('label', {}, 'Environment', env),
    h('nav', { 'aria-label': 'Main' }, h('ul', {},
      base && link(`${base}/flags`, 'Flags', 'flags'),
      base && link(`${base}/segments`, 'Segments', 'segments'),
      base && link(`${base}/audit`, 'Audit log', 'audit'),
      base && link(`${base}/playground`, 'Playground', 'playground'),
      link('#/keys', 'API keys', 'keys'))),
    h('div', { class: 'who' },
      h('span', {}, `Signed in as ${state.session.key.name}`),
      h('button', { type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out')));
}

let lastEnv = null;

let routing = Promise.resolve();
let routed = null;

/**
 * Shows the page the hash names, one route at a time; a second call for
 * the hash already shown (sign-in finishing after a hash change) is skipped.
 */
function route(again = false) {
  routing = routing.then(() => {
    if (!state.session || (!again && routed === location.hash)) return undefined;
    routed = location.hash;
    return routeNow();
  });
  return routing;
}

async function routeNow() {
  if (state.pageCleanup) { state.pageCleanup(); state.pageCleanup = null; }
  const r = parse();
  if (r.project) {
    lastEnv = { project: r.project, env: r.env };
    follow(r.project, r.env);
  }
  topBar(r);
  const envInfo = r.project && (state.envs[r.project] || []).find((e) => e.key === r.env);
  const ctx = { ...r, envInfo, envs: state.envs[r.project] || [], projects: state.projects, setCleanup: (f) => { state.pageCleanup = f; } };
  try {
    if (r.page === 'flags' && r.rest.length === 0) await flagList(ctx);
    else if (r.page === 'flags') await flagPage(ctx, r.rest[0]);
    else if (r.page === 'new') await newFlag(ctx);
    else if (r.page === 'segments' && r.rest.length === 0) await segmentList(ctx);
    else if (r.page === 'segments') await segmentPage(ctx, r.rest[0]);
    else if (r.page === 'audit') await auditPage(ctx);
    else if (r.page === 'playground') await playground(ctx);
    else if (r.page === 'keys') await keysPage({ ...ctx, project: lastEnv?.project, env: lastEnv?.env, allEnvs: state.envs });
    else show(h('h1', {}, 'Not found'), h('p', {}, 'There is no such page.'));
  } catch (err) {
    show(h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, err.message));
  }
  document.getElementById('main').focus({ preventScroll: true });
}

window.addEventListener('hashchange', () => route());
window.addEventListener('vexil:signed-out', () => {
  if (state.session) { state.session = null; routed = null; signInPage('Your session has ended. Sign in again.'); }
});
window.addEventListener('vexil:announce', (ev) => announce(ev.detail));

(async () => {
  const r = await call('GET', '/ui/api/session');
  if (r.status === 200) await start(r.body);
  else signInPage();
})();
