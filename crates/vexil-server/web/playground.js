// The evaluate playground: a context in, every flag's value, variant and
// reason out, with the trace of why (targets, each rule and clause with
// its outcome, segments, prerequisites, the rollout bucket).

import { call, paths } from './api.js';
import { h, fill, field, show } from './dom.js';

const EXAMPLE = { targetingKey: 'user-42', email: 'ada@example.com', plan: 'pro', country: 'NL' };

const yesNo = (b, yes = 'yes', no = 'no') => h('span', { class: b ? 'yes' : 'no' }, b ? yes : no);
const j = (v) => JSON.stringify(v);

function rolloutView(r) {
  return h('div', {},
    h('p', {}, `Rollout by ${r.bucketBy} = ${j(r.value)}${r.salt ? `, salt ${j(r.salt)}` : ''}: bucket ${r.bucket} of ${r.total} (${r.percent.toFixed(2)} %) → `, h('strong', {}, j(r.variant))),
    h('table', {}, h('thead', {}, h('tr', {}, ['Variant', 'Weight', 'Buckets'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, r.weights.map((w) => h('tr', { class: j(w.variant) === j(r.variant) ? 'chosen' : null },
        h('td', {}, j(w.variant), j(w.variant) === j(r.variant) ? ' ✔' : ''), h('td', {}, `${w.percent.toFixed(2)} %`), h('td', {}, `${w.from} – ${w.to}`))))));
}

function clauseView(c) {
  return h('li', {},
    `${c.attribute ?? '(segment)'} ${c.negate ? 'NOT ' : ''}${c.operator} ${j(c.values)}`,
    c.actual !== undefined ? ` — context has ${j(c.actual)}` : ' — not in the context',
    ': ', yesNo(c.result, 'holds', 'does not hold'),
    c.segments?.length ? h('ul', {}, c.segments.map((s) => h('li', {}, `segment ${s.segment}: ${s.membership}`,
      s.rules?.length ? h('ul', {}, s.rules.map(ruleView)) : null))) : null);
}

function ruleView(r) {
  return h('li', {}, `Rule ${r.index + 1}${r.name ? ` (${r.name})` : ''}: `, yesNo(r.matched, 'matched', 'did not match'),
    h('ul', {}, r.clauses.map(clauseView),
      r.notEvaluated ? h('li', { class: 'muted' }, `${r.notEvaluated} more clause(s) not evaluated`) : null));
}

function stepView(s) {
  switch (s.step) {
    case 'disabled': return h('li', {}, 'The flag is off: the off variant is served.');
    case 'prerequisite': return h('li', {}, `Prerequisite ${s.flag} must give ${j(s.requiredVariant)}: it gave ${j(s.actualVariant)}${s.enabled ? '' : ' (it is off)'} — `, yesNo(s.met, 'met', 'not met'),
      s.steps?.length ? h('ul', {}, s.steps.map(stepView)) : null);
    case 'targets': return h('li', {}, `Individual targets for key ${j(s.targetingKey)}: `, s.variant ? h('span', { class: 'yes' }, `listed for ${s.variant}`) : h('span', { class: 'no' }, 'not listed'));
    case 'rule': return ruleView(s);
    case 'targeting': return h('li', {}, `JsonLogic targeting returned ${j(s.result)}${s.failed ? ' (failed: the default is served)' : ''}`,
      s.fractional?.map(rolloutView));
    case 'serve': return h('li', {}, h('strong', {}, `Served ${j(s.variant)}`), ` — decided by ${s.by}${s.rule !== undefined ? ` ${s.rule + 1}` : ''}`,
      s.rollout ? rolloutView(s.rollout) : null);
    case 'error': return h('li', { class: 'error' }, `${s.code}: ${s.message}`);
    default: return h('li', {}, j(s));
  }
}

export async function playground(ctx) {
  const { project, env } = ctx;
  const context = h('textarea', { rows: '8', id: 'context', 'aria-describedby': 'context-error' }, JSON.stringify(EXAMPLE, null, 2));
  const only = h('input', { type: 'text', id: 'only-flags', placeholder: 'all flags' });
  const error = h('p', { class: 'problem', id: 'context-error', role: 'alert' });
  const results = h('div', { id: 'results', 'aria-live': 'polite' });
  const form = h('form', { class: 'panel' },
    field('Context (JSON)', context), error,
    field('Only these flags (comma separated)', only),
    h('button', { type: 'submit', class: 'primary' }, 'Evaluate'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let parsed;
    try { parsed = JSON.parse(context.value); context.removeAttribute('aria-invalid'); error.textContent = ''; } catch (e) {
      context.setAttribute('aria-invalid', 'true'); error.textContent = `Not valid JSON: ${e.message}`; return;
    }
    const body = { context: parsed };
    const keys = only.value.split(',').map((s) => s.trim()).filter(Boolean);
    if (keys.length) body.flags = keys;
    const r = await call('POST', paths.evaluate(project, env), body);
    if (!r.ok) { error.textContent = r.body?.message || `refused (${r.status})`; context.setAttribute('aria-invalid', 'true'); return; }
    const entries = Object.entries(r.body.flags);
    fill(results, h('h2', {}, `${entries.length} flag${entries.length === 1 ? '' : 's'} at version ${r.body.version}`),
      entries.map(([key, a]) => h('section', { class: 'panel', 'aria-label': `Flag ${key}`, dataset: { flag: key } },
        h('div', { class: 'row' }, h('h3', {}, key),
          a.errorCode ? h('span', { class: 'error' }, `${a.errorCode}: ${a.errorDetails}`)
            : [h('code', {}, j(a.value)), h('span', { class: 'pill' }, a.variant ?? 'no variant'), h('span', { class: 'pill' }, a.reason)]),
        a.trace ? h('details', { open: true }, h('summary', {}, 'Why'), h('ol', { class: 'trace' }, a.trace.steps.map(stepView))) : null)));
  });
  show(h('h1', {}, `Playground: ${ctx.envInfo?.name || env}`),
    h('p', { class: 'muted' }, 'What every flag gives a context, and why. Nothing here is counted as usage.'), form, results);
}
