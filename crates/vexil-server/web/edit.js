// What the flag and segment editors share: a notice area, the review of a
// change (a diff) before saving, the API's problems placed at the fields
// they belong to (by JSON pointer), and the conflict view when someone
// else saved first (412): what they changed, with reload or re-apply.

import { call } from './api.js';
import { h, fill, modal, diffView, announce } from './dom.js';

const clone = (v) => structuredClone(v);

/** Whether two JSON values are the same. */
export const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** The JSON pointer escaping of one token. */
export const escapeToken = (t) => t.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Applies my changes (mine against base, field by field) on top of theirs:
 * the fields I did not touch take their value.
 */
export function reapply(base, mine, theirs) {
  const out = clone(theirs);
  for (const k of new Set([...Object.keys(base), ...Object.keys(mine)])) {
    if (same(base[k], mine[k])) continue;
    if (mine[k] === undefined) delete out[k]; else out[k] = clone(mine[k]);
  }
  return out;
}

/**
 * A place for one notice at a time: `el` goes on the page, `notice(cls,
 * ...content)` replaces what it shows ('ok', 'bad' or '' for a warning)
 * and returns the banner.
 */
export function notices() {
  const el = h('div', { id: 'notices' });
  const notice = (cls, ...content) => {
    const banner = h('div', { class: `banner ${cls}`, role: cls === 'bad' ? 'alert' : 'status' }, content);
    fill(el, banner);
    return banner;
  };
  return { el, notice };
}

/** Shows the change (base item against the edited definition); true to save. */
export async function reviewChange(title, base, after) {
  const answer = await modal(title, h('div', {},
    h('p', {}, `Your changes against version ${base.version}:`),
    diffView(base.definition, after, 'Your changes')), [
    { label: 'Cancel', value: false }, { label: 'Save', value: true, class: 'primary' }]);
  return answer === true;
}

/**
 * Puts each of the API's problems beside the control under `root` whose
 * `data-pointer` is the longest prefix of the problem's pointer (made
 * relative to `prefix`, the item's place in the environment's document,
 * such as `/flags/checkout`), marking the control invalid until it is
 * edited. Returns the list of every problem, for a summary.
 */
export function placeProblems(root, prefix, problems) {
  const fields = [...root.querySelectorAll('[data-pointer]')];
  const summary = [];
  for (const p of problems) {
    const own = p.pointer === prefix || p.pointer.startsWith(`${prefix}/`);
    const rel = own ? p.pointer.slice(prefix.length) || '/' : p.pointer;
    let best = null;
    if (own) {
      for (const el of fields) {
        const fp = el.dataset.pointer;
        if ((rel === fp || rel.startsWith(`${fp}/`)) && (!best || fp.length > best.dataset.pointer.length)) best = el;
      }
    }
    summary.push(h('li', {}, h('code', {}, rel), ` ${p.message}`));
    if (best) {
      const id = `problem-${summary.length}`;
      const msg = h('p', { class: 'problem', id, dataset: { problem: rel } }, p.message);
      if (best.matches('input, select, textarea')) {
        const hint = best.getAttribute('aria-describedby');
        best.setAttribute('aria-invalid', 'true');
        best.setAttribute('aria-describedby', hint ? `${id} ${hint}` : id);
        const holder = best.closest('.field');
        if (holder) holder.append(msg); else best.after(msg);
        // Editing the control takes its mark away.
        const clear = () => {
          best.removeAttribute('aria-invalid');
          if (hint) best.setAttribute('aria-describedby', hint); else best.removeAttribute('aria-describedby');
          msg.remove();
        };
        best.addEventListener('input', clear, { once: true });
      } else best.prepend(msg);
    }
  }
  return h('ul', {}, summary);
}

/**
 * After a 412: reads the item again and shows, in a notice, what the other
 * person changed (their version against `base`, the one edited), with two
 * ways on: `reload()` (discard my edits) and `adopt(theirs, merged)` (my
 * edits re-applied on their version, to be reviewed and saved again).
 */
export async function showConflict({ url, noun, base, mine, notice, reload, adopt }) {
  const r = await call('GET', url);
  if (!r.ok) { notice('bad', `Someone else changed this ${noun}, and it cannot be read now.`); return; }
  const theirs = r.body;
  const view = notice('bad', h('h2', {}, `Someone else saved this ${noun} first`),
    h('p', {}, `You edited version ${base.version}; it is now at version ${theirs.version}. What they changed:`),
    diffView(base.definition, theirs.definition, 'What the other person changed'),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'conflict-reload', onclick: reload }, 'Reload (discard my edits)'),
      h('button', { type: 'button', class: 'primary', id: 'conflict-reapply',
        onclick: () => adopt(theirs, reapply(base.definition, mine, theirs.definition)) }, 'Re-apply my edits on their version')));
  view.id = 'conflict';
  view.querySelector('button').focus();
}

/**
 * Reviews an edited definition and saves it with `If-Match` on the version
 * edited, then says how it went: `saved(item)` with the stored item; after
 * a 412, the conflict view (its re-apply calls `adopt(theirs, merged)`);
 * after a 422, `render()` and the problems placed at their fields under
 * the item's pointer `/${section}/${key}`.
 */
export async function saveDefinition({ url, title, noun, section, key, base, after, root, notice, saved, render, reload, adopt }) {
  if (!(await reviewChange(title, base, after))) return;
  const r = await call('PUT', url, after, { 'If-Match': `"${base.version}"` });
  if (r.ok) {
    saved(r.body);
    notice('ok', `Saved: version ${r.body.version}.`); announce('Saved');
  } else if (r.status === 412) {
    await showConflict({
      url, noun, base, mine: after, notice, reload,
      adopt: (theirs, merged) => {
        adopt(theirs, merged);
        notice('', 'Your edits were applied to the current version. Review and save again.');
      },
    });
  } else if (r.status === 422) {
    render();
    notice('bad', h('p', {}, 'The server refused the change:'), placeProblems(root, `/${section}/${escapeToken(key)}`, r.body.problems || []));
  } else notice('bad', r.body?.message || `refused (${r.status})`);
}
