// One flag in one environment: every part of its definition editable, a
// diff before saving, the API's problems shown at their fields, the
// conflict view when someone else saved first (412), on/off with a
// confirmation in production, live updates, and the flag's audit log.

import { call, paths } from './api.js';
import { h, fill, field, show, confirmAction, announce, pretty } from './dom.js';
import { variantsEditor, targetsEditor, prerequisitesEditor, rulesEditor, serveEditor, flagType } from './rules.js';
import { auditList, loadChanges } from './audit.js';
import { same, notices, saveDefinition } from './edit.js';

const clone = (v) => structuredClone(v);

/** Whether an environment is production (by key or name). */
export function isProduction(envInfo, envKey) {
  return envKey === 'production' || /\bproduction\b/i.test(envInfo?.name || '');
}

export async function flagPage(ctx, key) {
  const { project, env } = ctx;
  const url = paths.flag(project, env, key);
  let base = null; // the item as read: edits are based on its version
  let def = null; // the definition being edited
  let dirty = false;
  const badJson = new Set();
  const { el: noticeBox, notice } = notices();
  const root = h('div');
  const saveButton = h('button', { type: 'button', class: 'primary', id: 'save' }, 'Review and save…');
  const discardButton = h('button', { type: 'button', id: 'discard' }, 'Discard edits');

  const changed = () => {
    dirty = !same(def, base.definition);
    saveButton.disabled = !dirty || badJson.size > 0;
    discardButton.disabled = !dirty;
  };

  async function load(message) {
    const r = await call('GET', url);
    if (r.status === 404) { show(h('h1', {}, key), h('p', { role: 'alert' }, 'This flag does not exist in this environment.')); return false; }
    if (!r.ok) throw new Error(r.body?.message || `status ${r.status}`);
    base = r.body; def = clone(base.definition); dirty = false;
    render();
    if (message) notice('ok', message);
    return true;
  }

  function jsonArea(label, pointer, value, set) {
    const area = h('textarea', { rows: '5', dataset: { pointer } }, value === undefined ? '' : pretty(value));
    const msg = h('p', { class: 'problem', id: `${pointer.slice(1)}-json-error` });
    area.addEventListener('input', () => {
      const text = area.value.trim();
      if (text === '') { set(undefined); badJson.delete(pointer); area.removeAttribute('aria-invalid'); msg.textContent = ''; }
      else {
        try {
          set(JSON.parse(text)); badJson.delete(pointer); area.removeAttribute('aria-invalid'); msg.textContent = '';
        } catch (e) {
          badJson.add(pointer); area.setAttribute('aria-invalid', 'true'); area.setAttribute('aria-describedby', msg.id);
          msg.textContent = `Not valid JSON: ${e.message}`;
        }
      }
      changed();
    });
    return h('div', {}, field(label, area), msg);
  }

  function render() {
    const rerender = () => { render(); };
    const enabled = def.enabled !== false;
    const toggle = h('button', { type: 'button', id: 'toggle', class: enabled ? 'danger' : 'primary', 'aria-pressed': String(enabled) },
      enabled ? `Turn off in ${ctx.envInfo?.name || env}` : `Turn on in ${ctx.envInfo?.name || env}`);
    toggle.addEventListener('click', () => doToggle(!enabled));
    const archive = h('button', { type: 'button' }, base.archived ? 'Restore' : 'Archive');
    archive.addEventListener('click', async () => {
      const r = await call('POST', `${url}/${base.archived ? 'restore' : 'archive'}`);
      if (r.ok) await load(base.archived ? 'Restored.' : 'Archived.'); else notice('bad', r.body?.message);
    });

    const description = h('input', { type: 'text', value: def.description || '', size: '60', dataset: { pointer: '/description' } });
    description.addEventListener('input', () => { if (description.value) def.description = description.value; else delete def.description; changed(); });
    const tags = h('input', { type: 'text', value: (def.tags || []).join(', '), dataset: { pointer: '/tags' } });
    tags.addEventListener('input', () => { const t = tags.value.split(',').map((s) => s.trim()).filter(Boolean); if (t.length) def.tags = t; else delete def.tags; changed(); });
    const kind = h('select', { dataset: { pointer: '/kind' } }, ['temporary', 'permanent'].map((k) => h('option', { value: k, selected: (def.kind || 'temporary') === k }, k)));
    kind.addEventListener('change', () => { def.kind = kind.value; changed(); });

    // A flag without a default gets one only when it is edited.
    const defaultServe = def.defaultServe || {};
    const defaultChanged = () => { def.defaultServe = defaultServe; changed(); };
    fill(root, 
      h('div', { class: 'row' },
        h('h1', {}, key),
        h('span', { class: `pill ${enabled ? 'on' : 'off'}`, id: 'state' }, enabled ? 'on' : 'off'),
        base.archived ? h('span', { class: 'pill' }, 'archived') : null,
        h('span', { class: 'muted', id: 'version' }, `version ${base.version}`)),
      h('div', { class: 'row' }, toggle, archive,
        h('a', { href: `#/p/${project}/e/${env}/flags` }, 'Back to the list')),
      noticeBox,
      h('section', { class: 'panel', 'aria-labelledby': 'details-h' }, h('h2', { id: 'details-h' }, 'Details'),
        field('Description', description), field('Tags (comma separated)', tags), field('Kind', kind),
        h('p', { class: 'muted' }, `Type: ${flagType(def)}`)),
      variantsEditor(def, changed, rerender),
      targetsEditor(def, changed),
      prerequisitesEditor(def, changed, rerender),
      rulesEditor(def, changed, rerender),
      h('section', { class: 'panel', 'aria-labelledby': 'default-h' }, h('h2', { id: 'default-h' }, 'Default'),
        h('p', { class: 'muted' }, 'Served when the flag is on and no target or rule decided.'),
        serveEditor(def, defaultServe, '/defaultServe', 'Default', defaultChanged, rerender)),
      h('section', { class: 'panel', 'aria-labelledby': 'logic-h' }, h('h2', { id: 'logic-h' }, 'flagd targeting (JsonLogic)'),
        h('p', { class: 'muted' }, 'For flags from flagd files: a JsonLogic expression returning a variant key. Leave empty for native rules.'),
        jsonArea('Targeting JSON', '/targeting', def.targeting, (v) => { if (v === undefined) delete def.targeting; else def.targeting = v; }),
        jsonArea('Metadata JSON', '/metadata', def.metadata, (v) => { if (v === undefined) delete def.metadata; else def.metadata = v; })),
      h('div', { class: 'row panel' }, saveButton, discardButton),
      h('section', { 'aria-labelledby': 'audit-h' }, h('h2', { id: 'audit-h' }, 'Audit log of this flag'), auditBox));
    changed();
    loadAudit();
  }

  const auditBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  async function loadAudit() {
    try { fill(auditBox, auditList(await loadChanges(`${url}/audit`), { showKey: false })); } catch (e) { auditBox.textContent = e.message; }
  }

  async function doToggle(on) {
    if (isProduction(ctx.envInfo, env)) {
      const ok = await confirmAction(`Turn ${on ? 'on' : 'off'} in production?`,
        `This changes what every production caller of "${key}" gets, at once.`, `Turn ${on ? 'on' : 'off'} in production`, on ? 'primary' : 'danger');
      if (!ok) return;
    }
    const r = await call('POST', `${url}/toggle`, { enabled: on });
    if (!r.ok) { notice('bad', r.body?.message || `refused (${r.status})`); return; }
    // Keep unsaved edits: only the on/off state and the version move.
    const edits = dirty ? def : null;
    base = r.body;
    def = edits ? { ...edits, enabled: base.definition.enabled } : clone(base.definition);
    render();
    notice('ok', `Turned ${on ? 'on' : 'off'}.`);
    announce(`${key} turned ${on ? 'on' : 'off'}`);
  }

  function save() {
    return saveDefinition({
      url, title: `Save "${key}"?`, noun: 'flag', section: 'flags', key,
      base, after: clone(def), root, notice, render,
      saved: (item) => { base = item; def = clone(base.definition); dirty = false; render(); },
      reload: () => load('Reloaded: your edits were discarded.'),
      adopt: (theirs, merged) => { base = theirs; def = merged; render(); },
    });
  }

  saveButton.addEventListener('click', save);
  discardButton.addEventListener('click', () => { def = clone(base.definition); render(); });

  if (!(await load())) return;
  show(root);

  // Live: a change made elsewhere updates the page, or warns while editing.
  const onVersion = async (ev) => {
    if (ev.detail.project !== project || ev.detail.env !== env || !base) return;
    const r = await call('GET', url);
    if (r.status === 404) { notice('bad', 'This flag was deleted elsewhere.'); return; }
    if (!r.ok || r.body.version === base.version) return;
    if (!dirty) {
      base = r.body; def = clone(base.definition); render();
      notice('ok', `Updated: someone else changed this flag (version ${base.version}).`);
      announce(`${key} was changed elsewhere`);
    } else {
      notice('', h('span', { id: 'stale-warning' }, `Someone else changed this flag (now version ${r.body.version}) while you were editing. Your edits are kept; saving will show what they changed. `),
        h('button', { type: 'button', onclick: () => load('Reloaded.') }, 'Reload (discard my edits)'));
    }
  };
  window.addEventListener('vexil:version', onVersion);
  ctx.setCleanup(() => window.removeEventListener('vexil:version', onVersion));
}
