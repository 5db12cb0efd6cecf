// The evaluate playground: a context in (as JSON, or as attribute rows
// kept in sync with it), every flag's value, variant and reason out, with
// the trace of why (targets, each rule and clause with its outcome,
// segments, prerequisites, the rollout bucket).

import { call, paths } from './api.js';
import { h, fill, field, show, pretty } from './dom.js';

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

/** A value as a row shows it: text as it is, unless it would read as JSON; other values as JSON. */
function valueText(v) {
  if (typeof v !== 'string') return JSON.stringify(v);
  try { JSON.parse(v); return JSON.stringify(v); } catch { return v; }
}

/** A row's value: JSON when it reads as JSON (42, true, "quoted", [...]), else the text. */
function parseValue(text) {
  try { return JSON.parse(text); } catch { return text; }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The context as a targeting key and attribute rows (name, value), kept
 * in sync with the JSON text area: editing a row rewrites the JSON, and
 * editing the JSON (when it is a valid object) redraws the rows.
 */
function attributeRows(jsonArea, onJsonWritten) {
  let rows = [];
  const targetingKey = h('input', { type: 'text', id: 'targeting-key', autocomplete: 'off' });
  const list = h('div', { class: 'attrs' });
  const note = h('p', { class: 'muted', id: 'attrs-note' });
  const add = h('button', { type: 'button' }, 'Add attribute');

  const toContext = () => {
    const out = {};
    if (targetingKey.value !== '') out.targetingKey = targetingKey.value;
    for (const r of rows) if (r.name.trim() !== '') out[r.name.trim()] = parseValue(r.value);
    return out;
  };

  /** Marks names given twice (the last one counts, as in JSON). */
  const markDuplicates = () => {
    const seen = new Set(targetingKey.value !== '' ? ['targetingKey'] : []);
    let dup = false;
    [...list.querySelectorAll('input[data-name]')].reverse().forEach((input) => {
      const name = input.value.trim();
      const twice = name !== '' && seen.has(name);
      seen.add(name);
      dup ||= twice;
      if (twice) { input.setAttribute('aria-invalid', 'true'); input.setAttribute('aria-describedby', note.id); } else {
        input.removeAttribute('aria-invalid'); input.removeAttribute('aria-describedby');
      }
    });
    note.textContent = dup ? 'A name is given twice: the last one counts.' : '';
  };

  const writeJson = () => {
    jsonArea.value = pretty(toContext());
    markDuplicates();
    onJsonWritten();
  };

  const draw = (focus) => {
    // Column names for the eye; each input has its own label.
    const head = rows.length ? h('div', { class: 'row head', 'aria-hidden': 'true' }, h('span', {}, 'Name'), h('span', {}, 'Value')) : null;
    fill(list, head, rows.map((r, i) => {
      const n = i + 1;
      const name = h('input', { type: 'text', value: r.name, placeholder: 'name', 'aria-label': `Attribute ${n} name`, dataset: { name: '' }, autocomplete: 'off' });
      const value = h('input', { type: 'text', value: r.value, placeholder: 'value', 'aria-label': `Attribute ${n} value`, autocomplete: 'off' });
      name.addEventListener('input', () => { r.name = name.value; writeJson(); });
      value.addEventListener('input', () => { r.value = value.value; writeJson(); });
      const remove = h('button', { type: 'button', class: 'danger', 'aria-label': `Remove attribute ${n}`, onclick: () => {
        rows.splice(i, 1); draw(i < rows.length ? i : 'add'); writeJson();
      } }, 'Remove');
      return h('div', { class: 'row', role: 'group', 'aria-label': `Attribute ${n}` }, name, value, remove);
    }));
    markDuplicates();
    if (focus === 'add') add.focus();
    else if (focus !== undefined) list.querySelectorAll('input[data-name]')[focus]?.focus();
  };

  /** Shows a context read from the JSON. */
  const read = (context) => {
    const tk = typeof context.targetingKey === 'string' ? context.targetingKey : '';
    targetingKey.value = tk;
    rows = Object.entries(context)
      .filter(([k]) => !(k === 'targetingKey' && typeof context.targetingKey === 'string'))
      .map(([k, v]) => ({ name: k, value: valueText(v) }));
    draw();
  };

  targetingKey.addEventListener('input', writeJson);
  add.addEventListener('click', () => { rows.push({ name: '', value: '' }); draw(rows.length - 1); });
  jsonArea.addEventListener('input', () => {
    let parsed;
    try { parsed = JSON.parse(jsonArea.value); } catch { parsed = undefined; }
    if (isObject(parsed)) read(parsed);
    else note.textContent = 'The JSON is not a valid object yet: the rows show the last one that was.';
  });

  const el = h('fieldset', { class: 'attributes' }, h('legend', {}, 'Context as attributes'),
    field('Targeting key', targetingKey),
    list, add, note,
    h('p', { class: 'muted' }, 'A value that reads as JSON (42, true, "quoted", ["a", "b"]) is that value; anything else is text.'));
  return { el, read };
}

export async function playground(ctx) {
  const { project, env } = ctx;
  const context = h('textarea', { rows: '8', id: 'context', 'aria-describedby': 'context-error' }, JSON.stringify(EXAMPLE, null, 2));
  const only = h('input', { type: 'text', id: 'only-flags', placeholder: 'all flags' });
  const error = h('p', { class: 'problem', id: 'context-error', role: 'alert' });
  const results = h('div', { id: 'results', 'aria-live': 'polite' });
  const clearError = () => { context.removeAttribute('aria-invalid'); error.textContent = ''; };
  const attributes = attributeRows(context, clearError);
  attributes.read(EXAMPLE);
  const form = h('form', { class: 'panel' },
    h('div', { class: 'context' }, h('div', {}, field('Context (JSON)', context), error), attributes.el),
    field('Only these flags (comma separated)', only),
    h('button', { type: 'submit', class: 'primary' }, 'Evaluate'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let parsed;
    try { parsed = JSON.parse(context.value); clearError(); } catch (e) {
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
