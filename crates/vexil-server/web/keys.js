// API keys: create one (its secret shown once, with a copy button), list
// them, revoke one.

import { call, must, paths } from './api.js';
import { h, fill, field, show, confirmAction, announce, when } from './dom.js';

export async function keysPage(ctx) {
  const list = h('div', {});
  const created = h('div', { 'aria-live': 'polite' });

  async function load() {
    const keys = (await must('GET', paths.keys())).items;
    fill(list, h('table', {},
      h('caption', { class: 'visually-hidden' }, 'API keys'),
      h('thead', {}, h('tr', {}, ['Name', 'Prefix', 'Scope', 'For', 'Created', 'State', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, keys.map((k) => h('tr', {},
        h('td', {}, k.name), h('td', {}, h('code', {}, k.prefix)), h('td', {}, k.scope),
        h('td', {}, [k.project, k.environment].filter(Boolean).join(' / ') || 'every project'),
        h('td', {}, when(k.createdAt)),
        h('td', {}, k.revokedAt ? `revoked ${when(k.revokedAt)}` : 'active'),
        h('td', {}, k.revokedAt ? null : h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${k.name}`, onclick: async () => {
          if (!(await confirmAction(`Revoke "${k.name}"?`, 'Requests with this key are refused at once, and its streams end.', 'Revoke', 'danger'))) return;
          const r = await call('POST', `${paths.keys()}/${k.id}/revoke`);
          if (!r.ok) { fill(created, h('p', { class: 'error', role: 'alert' }, r.body?.message)); return; }
          announce(`Key ${k.name} revoked`);
          await load();
        } }, 'Revoke')))))));
  }

  const name = h('input', { type: 'text', name: 'name', required: true });
  const scope = h('select', { name: 'scope' }, ['server', 'client', 'admin'].map((s) => h('option', { value: s }, s)));
  const projectSel = h('select', { name: 'project' }, h('option', { value: '' }, '(every project: admin keys only)'),
    ctx.projects.map((p) => h('option', { value: p.key, selected: p.key === ctx.project }, p.key)));
  const envSel = h('select', { name: 'environment' });
  const fillEnvs = () => fill(envSel, h('option', { value: '' }, '(none: admin keys)'),
    (ctx.allEnvs[projectSel.value] || []).map((e, i) => h('option', { value: e.key, selected: ctx.env ? e.key === ctx.env : i === 0 }, e.key)));
  projectSel.addEventListener('change', fillEnvs);
  fillEnvs();
  const error = h('div', { role: 'alert' });
  const form = h('form', { class: 'panel', 'aria-labelledby': 'new-key-h' },
    h('h2', { id: 'new-key-h' }, 'Create a key'),
    h('div', { class: 'row' }, field('Name', name), field('Scope', scope), field('Project', projectSel), field('Environment', envSel)),
    error, h('button', { type: 'submit', class: 'primary' }, 'Create key'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim(), scope: scope.value };
    if (projectSel.value) body.project = projectSel.value;
    if (envSel.value && scope.value !== 'admin') body.environment = envSel.value;
    const r = await call('POST', paths.keys(), body);
    if (!r.ok) { fill(error, h('p', { class: 'error' }, r.body?.message || `refused (${r.status})`)); return; }
    fill(error);
    name.value = '';
    const secret = h('code', { class: 'secret', id: 'new-secret' }, r.body.secret);
    const copy = h('button', { type: 'button', onclick: async () => {
      try { await navigator.clipboard.writeText(r.body.secret); copy.textContent = 'Copied'; } catch { copy.textContent = 'Select the text and copy it'; }
    } }, 'Copy');
    fill(created, h('div', { class: 'banner ok' },
      h('p', {}, h('strong', {}, `Key "${r.body.name}" created. `), 'Its secret is shown this once: store it now.'),
      h('div', { class: 'row' }, secret, copy)));
    copy.focus();
    await load();
  });

  show(h('h1', {}, 'API keys'), form, created, h('h2', {}, 'Keys'), list);
  await load();
}
