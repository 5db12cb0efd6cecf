// The audit log: who changed what and when, with each change's
// before/after diff, for one flag (on its page) or a whole environment.

import { must, paths } from './api.js';
import { h, show, diffView, when } from './dom.js';

const PAGE = 25;

/** Every change after version 0 (the API pages forward by version). */
export async function loadChanges(path) {
  const all = [];
  let after = 0;
  for (let i = 0; i < 20; i += 1) {
    const page = await must('GET', `${path}?after=${after}&limit=1000`);
    all.push(...page.items);
    if (page.items.length < 1000) break;
    after = page.items[page.items.length - 1].version;
  }
  return all.reverse();
}

/** Entries, newest first, each with its diff behind a disclosure. */
export function auditList(changes, { showKey = true } = {}) {
  const list = h('ol', { class: 'audit', reversed: true });
  const more = h('button', { type: 'button' }, 'Show older entries');
  let shown = 0;
  const page = () => {
    for (const c of changes.slice(shown, shown + PAGE)) {
      list.append(h('li', { class: 'panel' },
        h('div', { class: 'row' },
          h('strong', {}, c.action),
          showKey ? h('code', {}, `${c.kind} ${c.key}`) : null,
          h('span', {}, `by ${c.actor}`),
          h('span', { class: 'muted' }, `${when(c.at)} · version ${c.version}`)),
        h('details', {}, h('summary', {}, 'Before / after'),
          diffView(c.before, c.after, `Change at version ${c.version}`))));
    }
    shown += PAGE;
    more.hidden = shown >= changes.length;
  };
  more.addEventListener('click', page);
  page();
  return h('div', {}, changes.length ? list : h('p', { class: 'muted' }, 'No changes yet.'), more);
}

export async function auditPage(ctx) {
  const { project, env } = ctx;
  const changes = await loadChanges(`${paths.env(project, env)}/audit`);
  show(h('h1', {}, `Audit log of ${ctx.envInfo?.name || env}`), auditList(changes));
  const onVersion = async (ev) => {
    if (ev.detail.project !== project || ev.detail.env !== env) return;
    if (location.hash.endsWith('/audit')) auditPage(ctx);
  };
  window.addEventListener('vexil:version', onVersion, { once: true });
  ctx.setCleanup(() => window.removeEventListener('vexil:version', onVersion));
}
