// The flag list (search by key, filter by tag, archived, pages, each
// flag's state in every environment of the project) and the form that
// creates a flag.

import { call, must, paths } from './api.js';
import { h, fill, field, show, announce } from './dom.js';

const PAGE = 20;

/**
 * The on/off state in another environment of the flags whose keys are
 * after `after` (exclusive; null: from the first) up to `last` (inclusive):
 * the keys of one page of the list, which is in key order. That range of
 * the other environment is read 500 flags a request, so a page takes one
 * request per environment unless the other has many more flags in the
 * range (a tag filter matching few flags). The key search narrows the
 * range alike in every environment; a tag does not (tags are set per
 * environment). A flag the other environment lacks, or has archived while
 * the list shows live flags (or the other way round), has no state there.
 */
async function statesIn(project, env, after, last, { q, archived }) {
  const states = new Map();
  let from = after;
  while (last !== undefined) {
    const params = new URLSearchParams({ limit: '500' });
    if (q) params.set('q', q);
    if (archived) params.set('archived', 'true');
    if (from) params.set('after', from);
    const r = await call('GET', `${paths.flags(project, env)}?${params}`);
    if (!r.ok) break;
    for (const item of r.body.items) states.set(item.key, item.definition.enabled !== false);
    // Keys are ASCII, so JavaScript orders them as the server does.
    if (!r.body.next || r.body.next >= last) break;
    from = r.body.next;
  }
  return states;
}

export async function flagList(ctx) {
  const { project, env } = ctx;
  const q = h('input', { type: 'search', name: 'q', placeholder: 'part of a key' });
  const tag = h('input', { type: 'text', name: 'tag', placeholder: 'a tag' });
  const archived = h('input', { type: 'checkbox', name: 'archived' });
  const body = h('div', {});
  const status = h('p', { class: 'muted', 'aria-live': 'polite' });
  let cursors = [null];
  let pageNo = 0;

  async function load() {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (q.value.trim()) params.set('q', q.value.trim());
    if (tag.value.trim()) params.set('tag', tag.value.trim());
    if (archived.checked) params.set('archived', 'true');
    if (cursors[pageNo]) params.set('after', cursors[pageNo]);
    const page = await must('GET', `${paths.flags(project, env)}?${params}`);
    // The state of each listed flag in every environment of the project.
    const states = {};
    await Promise.all(ctx.envs.map(async (e) => {
      states[e.key] = e.key === env ? new Map(page.items.map((i) => [i.key, i.definition.enabled !== false]))
        : await statesIn(project, e.key, cursors[pageNo], page.items.at(-1)?.key, { q: q.value.trim(), archived: archived.checked });
    }));
    cursors[pageNo + 1] = page.next;
    const rows = page.items.map((item) => {
      const d = item.definition;
      return h('tr', {},
        h('td', {}, h('a', { href: `#/p/${project}/e/${env}/flags/${encodeURIComponent(item.key)}` }, item.key),
          d.description ? h('div', { class: 'muted' }, d.description) : null),
        h('td', {}, (d.tags || []).map((t) => h('span', { class: 'pill tag' }, t)), ' '),
        ctx.envs.map((e) => {
          const on = states[e.key]?.get(item.key);
          return h('td', {}, on === undefined ? h('span', { class: 'muted' }, '—')
            : h('span', { class: `pill ${on ? 'on' : 'off'}` }, on ? 'on' : 'off'));
        }),
        h('td', {}, String(item.version)));
    });
    fill(body, page.items.length === 0 ? h('p', {}, 'No flags match.') : h('table', {},
      h('caption', { class: 'visually-hidden' }, 'Flags'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Tags'),
        ctx.envs.map((e) => h('th', { scope: 'col' }, e.name || e.key)), h('th', { scope: 'col' }, 'Version'))),
      h('tbody', {}, rows)));
    prev.disabled = pageNo === 0;
    next.disabled = !page.next;
    status.textContent = `Page ${pageNo + 1}: ${page.items.length} flag${page.items.length === 1 ? '' : 's'}`;
  }

  const prev = h('button', { type: 'button', onclick: () => { pageNo -= 1; load(); } }, 'Previous page');
  const next = h('button', { type: 'button', onclick: () => { pageNo += 1; load(); } }, 'Next page');
  const filters = h('form', { class: 'row', role: 'search', 'aria-label': 'Filter flags' },
    field('Search by key', q), field('Tag', tag),
    h('label', { class: 'row' }, archived, 'Archived flags'),
    h('button', { type: 'submit' }, 'Filter'));
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); cursors = [null]; pageNo = 0; load(); });
  archived.addEventListener('change', () => { cursors = [null]; pageNo = 0; load(); });

  show(h('div', { class: 'row' }, h('h1', {}, `Flags in ${ctx.envInfo?.name || env}`),
    h('a', { class: 'button primary', href: `#/p/${project}/e/${env}/new` }, 'New flag')),
  filters, status, body, h('div', { class: 'row' }, prev, next));
  await load();
  // Live: another change to the environment reloads the list.
  const onVersion = (ev) => { if (ev.detail.project === project && ev.detail.env === env) load(); };
  window.addEventListener('vexil:version', onVersion);
  ctx.setCleanup(() => window.removeEventListener('vexil:version', onVersion));
}

/** Variants to start a flag of each type with. */
const STARTERS = {
  boolean: { variants: { on: true, off: false }, offVariant: 'off', defaultServe: { variant: 'on' } },
  string: { variants: { a: 'a', b: 'b' }, offVariant: 'a', defaultServe: { variant: 'a' } },
  number: { variants: { low: 0, high: 1 }, offVariant: 'low', defaultServe: { variant: 'low' } },
  object: { variants: { empty: {}, full: { enabled: true } }, offVariant: 'empty', defaultServe: { variant: 'empty' } },
};

export async function newFlag(ctx) {
  const { project, env } = ctx;
  const key = h('input', { type: 'text', name: 'key', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]*' });
  const type = h('select', { name: 'type' }, Object.keys(STARTERS).map((t) => h('option', { value: t }, t)));
  const description = h('input', { type: 'text', name: 'description' });
  const error = h('div', { role: 'alert' });
  const form = h('form', { class: 'panel' },
    field('Key', key, 'Letters, digits, "_", "-" and "."'), field('Type', type), field('Description', description),
    error, h('button', { class: 'primary', type: 'submit' }, 'Create flag'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const def = { ...structuredClone(STARTERS[type.value]), type: type.value, enabled: false };
    if (description.value.trim()) def.description = description.value.trim();
    const r = await call('PUT', paths.flag(project, env, key.value.trim()), def, { 'If-None-Match': '*' });
    if (!r.ok) {
      const problems = (r.body?.problems || []).map((p) => h('li', {}, `${p.pointer}: ${p.message}`));
      fill(error, h('p', { class: 'error' }, r.body?.message || `refused (${r.status})`), problems.length ? h('ul', {}, problems) : null);
      key.setAttribute('aria-invalid', 'true');
      return;
    }
    announce(`Flag ${key.value} created`);
    location.hash = `#/p/${project}/e/${env}/flags/${encodeURIComponent(key.value.trim())}`;
  });
  show(h('h1', {}, `New flag in ${ctx.envInfo?.name || env}`), form);
  key.focus();
}
