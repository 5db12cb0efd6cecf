// Segments: the list of an environment's segments, and one segment's
// editor (description, included and excluded keys, rules with the clause
// builder), saved after a diff with the flag page's problem and conflict
// handling (edit.js).

import { call, must, paths } from './api.js';
import { h, fill, field, show, announce } from './dom.js';
import { clauseEditor } from './rules.js';
import { same, notices, saveDefinition } from './edit.js';

const clone = (v) => structuredClone(v);
const segmentsUrl = (p, e) => `${paths.env(p, e)}/segments`;

export async function segmentList(ctx) {
  const { project, env } = ctx;
  const body = h('div', {});
  const load = async () => {
    const page = await must('GET', `${segmentsUrl(project, env)}?limit=500`);
    fill(body, page.items.length === 0 ? h('p', {}, 'No segments yet.') : h('table', {},
      h('caption', { class: 'visually-hidden' }, 'Segments'),
      h('thead', {}, h('tr', {}, ['Key', 'Description', 'Included', 'Rules', 'Version'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, page.items.map((s) => h('tr', {},
        h('td', {}, h('a', { href: `#/p/${project}/e/${env}/segments/${encodeURIComponent(s.key)}` }, s.key)),
        h('td', {}, s.definition.description || ''),
        h('td', {}, String((s.definition.included || []).length)),
        h('td', {}, String((s.definition.rules || []).length)),
        h('td', {}, String(s.version)))))));
  };
  const key = h('input', { type: 'text', name: 'segment-key', required: true });
  const error = h('div', { role: 'alert' });
  const form = h('form', { class: 'row panel', 'aria-label': 'New segment' }, field('New segment key', key),
    h('button', { type: 'submit', class: 'primary' }, 'Create segment'), error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const k = key.value.trim();
    const r = await call('PUT', `${segmentsUrl(project, env)}/${encodeURIComponent(k)}`, {}, { 'If-None-Match': '*' });
    if (!r.ok) { fill(error, h('p', { class: 'error' }, r.body?.message || `refused (${r.status})`)); return; }
    announce(`Segment ${k} created`);
    location.hash = `#/p/${project}/e/${env}/segments/${encodeURIComponent(k)}`;
  });
  show(h('h1', {}, `Segments in ${ctx.envInfo?.name || env}`), form, body);
  await load();
  const onVersion = (ev) => { if (ev.detail.project === project && ev.detail.env === env) load(); };
  window.addEventListener('vexil:version', onVersion);
  ctx.setCleanup(() => window.removeEventListener('vexil:version', onVersion));
}

export async function segmentPage(ctx, key) {
  const { project, env } = ctx;
  const url = `${segmentsUrl(project, env)}/${encodeURIComponent(key)}`;
  let base = null; // the segment as read: edits are based on its version
  let def = null; // the definition being edited
  const { el: noticeBox, notice } = notices();
  const root = h('div');
  const save = h('button', { type: 'button', class: 'primary', id: 'save' }, 'Review and save…');
  const dirty = () => !same(def, base.definition);
  const changed = () => { save.disabled = !dirty(); };

  const keysArea = (label, name) => {
    const area = h('textarea', { rows: '2', dataset: { pointer: `/${name}` } }, (def[name] || []).join(', '));
    area.addEventListener('input', () => {
      const keys = area.value.split(/[\s,]+/).filter(Boolean);
      if (keys.length) def[name] = keys; else delete def[name];
      changed();
    });
    return field(label, area);
  };

  function render() {
    const description = h('input', { type: 'text', value: def.description || '', size: '60', dataset: { pointer: '/description' } });
    description.addEventListener('input', () => { if (description.value) def.description = description.value; else delete def.description; changed(); });
    const rules = def.rules || [];
    fill(root,
      h('div', { class: 'row' }, h('h1', {}, `Segment ${key}`), h('span', { class: 'muted', id: 'version' }, `version ${base.version}`),
        h('a', { href: `#/p/${project}/e/${env}/segments` }, 'Back to the list')),
      noticeBox,
      h('section', { class: 'panel', 'aria-label': 'Members' }, field('Description', description),
        keysArea('Included targeting keys', 'included'), keysArea('Excluded targeting keys', 'excluded')),
      h('section', { class: 'panel', 'aria-labelledby': 'seg-rules-h' }, h('h2', { id: 'seg-rules-h' }, 'Rules (a context matching any rule is a member)'),
        rules.map((rule, i) => h('div', { class: 'panel sub', role: 'group', 'aria-label': `Segment rule ${i + 1}`, dataset: { pointer: `/rules/${i}` } },
          h('h3', {}, `Segment rule ${i + 1}`),
          rule.clauses.map((c, j) => clauseEditor(c, `/rules/${i}/clauses/${j}`, j + 1, changed, () => { rule.clauses.splice(j, 1); changed(); render(); })),
          h('button', { type: 'button', onclick: () => { rule.clauses.push({ attribute: '', op: 'in', values: [] }); changed(); render(); } }, `Add clause to segment rule ${i + 1}`),
          h('button', { type: 'button', class: 'danger', onclick: () => { rules.splice(i, 1); if (!rules.length) delete def.rules; changed(); render(); } }, `Remove segment rule ${i + 1}`))),
        h('button', { type: 'button', onclick: () => { def.rules = [...rules, { clauses: [{ attribute: '', op: 'in', values: [] }] }]; changed(); render(); } }, 'Add segment rule')),
      h('div', { class: 'row panel' }, save));
    changed();
  }

  async function load(message) {
    base = await must('GET', url);
    def = clone(base.definition);
    render();
    if (message) notice('ok', message);
  }

  save.addEventListener('click', () => saveDefinition({
    url, title: `Save segment "${key}"?`, noun: 'segment', section: 'segments', key,
    base, after: clone(def), root, notice, render,
    saved: (item) => { base = item; def = clone(base.definition); render(); },
    reload: () => load('Reloaded: your edits were discarded.'),
    adopt: (theirs, merged) => { base = theirs; def = merged; render(); },
  }));

  await load();
  show(root);
  // Live: a change made elsewhere updates the page, or warns while editing.
  const onVersion = async (ev) => {
    if (ev.detail.project !== project || ev.detail.env !== env || !base) return;
    const r = await call('GET', url);
    if (r.status === 404) { notice('bad', 'This segment was deleted elsewhere.'); return; }
    if (!r.ok || r.body.version === base.version) return;
    if (!dirty()) {
      base = r.body; def = clone(base.definition); render();
      notice('ok', `Updated: someone else changed this segment (version ${base.version}).`);
      announce(`Segment ${key} was changed elsewhere`);
    } else {
      notice('', h('span', { id: 'stale-warning' }, `Someone else changed this segment (now version ${r.body.version}) while you were editing. Your edits are kept; saving will show what they changed. `),
        h('button', { type: 'button', onclick: () => load('Reloaded.') }, 'Reload (discard my edits)'));
    }
  };
  window.addEventListener('vexil:version', onVersion);
  ctx.setCleanup(() => window.removeEventListener('vexil:version', onVersion));
}
