// Editors for the parts of a flag definition: typed variants, individual
// targets, prerequisites, rules with their clause builder, and what to
// serve (a variant, or a rollout whose weights always add up to 100).
// Each editor changes the definition in place and calls `changed()`;
// controls carry `data-pointer` (a JSON pointer within the flag) so that
// the API's problems can be shown beside them.

import { h, field } from './dom.js';

export const OPERATORS = [
  ['in', 'is one of'], ['notIn', 'is not one of'], ['startsWith', 'starts with'], ['endsWith', 'ends with'],
  ['contains', 'contains'], ['matches', 'matches regex'], ['lt', '<'], ['lte', '≤'], ['gt', '>'], ['gte', '≥'],
  ['semverEq', 'version ='], ['semverLt', 'version <'], ['semverLte', 'version ≤'], ['semverGt', 'version >'],
  ['semverGte', 'version ≥'], ['before', 'date before'], ['after', 'date after'], ['exists', 'exists'],
  ['inSegment', 'in segment'],
];

const NUMERIC = new Set(['lt', 'lte', 'gt', 'gte']);

/** The flag's value type: declared, else that of its first variant. */
export function flagType(def) {
  if (def.type) return def.type;
  const first = Object.values(def.variants || {})[0];
  if (typeof first === 'boolean') return 'boolean';
  if (typeof first === 'number') return 'number';
  if (typeof first === 'string') return 'string';
  return 'object';
}

/** A clause's values as text: comma separated, quoted where needed. */
export function valuesText(values) {
  return (values || []).map((v) => {
    if (typeof v === 'string') {
      const plain = v !== '' && !v.includes(',') && !/^\s|\s$/.test(v) && !/^(true|false|null|-?\d+(\.\d+)?)$/.test(v) && !v.startsWith('"');
      return plain ? v : JSON.stringify(v);
    }
    return JSON.stringify(v);
  }).join(', ');
}

/** Text back into values: "quoted" strings, numbers, true/false, else text. */
export function parseValues(text, op) {
  const out = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*(,|$)/gy;
  let m;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
    const token = m[1];
    if (token === '' && m[2] === '') break;
    if (token.startsWith('"')) { try { out.push(JSON.parse(token)); continue; } catch { /* as text */ } }
    if (token === '') continue;
    if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(token) && (NUMERIC.has(op) || op === 'in' || op === 'notIn')) out.push(Number(token));
    else if ((token === 'true' || token === 'false') && (op === 'in' || op === 'notIn')) out.push(token === 'true');
    else out.push(token);
    if (m[2] === '') break;
  }
  return out;
}

/** A typed input for one variant value. */
function valueInput(type, value, onValue, label, pointer) {
  if (type === 'boolean') {
    const sel = h('select', { 'aria-label': label, dataset: { pointer } },
      h('option', { value: 'true', selected: value === true }, 'true'),
      h('option', { value: 'false', selected: value === false }, 'false'));
    sel.addEventListener('change', () => onValue(sel.value === 'true'));
    return sel;
  }
  if (type === 'number') {
    const inp = h('input', { type: 'number', step: 'any', value: String(value ?? 0), 'aria-label': label, dataset: { pointer } });
    inp.addEventListener('input', () => { if (inp.value !== '' && Number.isFinite(Number(inp.value))) onValue(Number(inp.value)); });
    return inp;
  }
  if (type === 'string') {
    const inp = h('input', { type: 'text', value: value ?? '', 'aria-label': label, dataset: { pointer } });
    inp.addEventListener('input', () => onValue(inp.value));
    return inp;
  }
  const area = h('textarea', { rows: '2', 'aria-label': label, dataset: { pointer } }, JSON.stringify(value));
  area.addEventListener('input', () => {
    try { onValue(JSON.parse(area.value)); area.removeAttribute('aria-invalid'); } catch { area.setAttribute('aria-invalid', 'true'); }
  });
  return area;
}

/** Variants: key and typed value rows, add and remove; the off variant. */
export function variantsEditor(def, changed, rerender) {
  const type = flagType(def);
  const rows = Object.entries(def.variants || {}).map(([key, value]) => {
    const keyInput = h('input', { type: 'text', value: key, 'aria-label': `Variant key ${key}`, size: '12', dataset: { pointer: `/variants/${key}` } });
    keyInput.addEventListener('change', () => {
      const nk = keyInput.value.trim();
      if (!nk || nk === key || nk in def.variants) { keyInput.value = key; return; }
      def.variants = Object.fromEntries(Object.entries(def.variants).map(([k, v]) => [k === key ? nk : k, v]));
      if (def.offVariant === key) def.offVariant = nk;
      changed(); rerender();
    });
    return h('div', { class: 'row' }, keyInput,
      valueInput(type, value, (v) => { def.variants[key] = v; changed(); }, `Value of variant ${key}`, `/variants/${key}`),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Remove variant ${key}`,
        onclick: () => { delete def.variants[key]; changed(); rerender(); } }, 'Remove'));
  });
  const add = h('button', { type: 'button', onclick: () => {
    let n = Object.keys(def.variants || {}).length + 1;
    while (`variant-${n}` in (def.variants || {})) n += 1;
    const starter = { boolean: false, number: 0, string: '', object: {} }[type];
    def.variants = { ...(def.variants || {}), [`variant-${n}`]: starter };
    changed(); rerender();
  } }, 'Add variant');
  const off = h('select', { dataset: { pointer: '/offVariant' } },
    h('option', { value: '', selected: !def.offVariant }, '(none: the caller\'s default)'),
    Object.keys(def.variants || {}).map((k) => h('option', { value: k, selected: def.offVariant === k }, k)));
  off.addEventListener('change', () => { if (off.value) def.offVariant = off.value; else delete def.offVariant; changed(); });
  return h('section', { class: 'panel', 'aria-labelledby': 'variants-h' },
    h('h2', { id: 'variants-h' }, `Variants (${type})`), rows, add, field('Served when off', off));
}

/** Individual targets: per variant, the targeting keys that get it. */
export function targetsEditor(def, changed) {
  const rows = Object.keys(def.variants || {}).map((variant) => {
    const area = h('textarea', { rows: '1', dataset: { pointer: `/targets/${variant}` } }, (def.targets?.[variant] || []).join(', '));
    area.addEventListener('input', () => {
      const keys = area.value.split(/[\s,]+/).filter(Boolean);
      def.targets = { ...(def.targets || {}) };
      if (keys.length) def.targets[variant] = keys; else delete def.targets[variant];
      if (Object.keys(def.targets).length === 0) delete def.targets;
      changed();
    });
    return field(`Targeting keys served "${variant}"`, area);
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'targets-h' }, h('h2', { id: 'targets-h' }, 'Individual targets'), rows);
}

/** Prerequisites: other flags that must give a variant first. */
export function prerequisitesEditor(def, changed, rerender) {
  const list = def.prerequisites || [];
  const rows = list.map((p, i) => {
    const flag = h('input', { type: 'text', value: p.flag, dataset: { pointer: `/prerequisites/${i}/flag` } });
    const variant = h('input', { type: 'text', value: p.variant, dataset: { pointer: `/prerequisites/${i}/variant` } });
    flag.addEventListener('input', () => { p.flag = flag.value.trim(); changed(); });
    variant.addEventListener('input', () => { p.variant = variant.value.trim(); changed(); });
    return h('div', { class: 'row' }, field(`Prerequisite ${i + 1}: flag`, flag), field('must give variant', variant),
      h('button', { type: 'button', class: 'danger', onclick: () => { list.splice(i, 1); if (!list.length) delete def.prerequisites; changed(); rerender(); } }, 'Remove'));
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'prereq-h' }, h('h2', { id: 'prereq-h' }, 'Prerequisites'), rows,
    h('button', { type: 'button', onclick: () => { def.prerequisites = [...list, { flag: '', variant: '' }]; changed(); rerender(); } }, 'Add prerequisite'));
}

/** Rounds to tenths. */
const tenth = (x) => Math.round(x * 10) / 10;

/**
 * Sets one weight and spreads what is left over the others in proportion
 * (evenly when they are all zero), so the weights add up to 100.
 */
export function rebalance(weights, key, value) {
  const v = Math.min(100, Math.max(0, tenth(value)));
  const others = Object.keys(weights).filter((k) => k !== key);
  const out = { ...weights, [key]: v };
  if (others.length === 0) { out[key] = 100; return out; }
  const rest = tenth(100 - v);
  const sum = others.reduce((s, k) => s + weights[k], 0);
  let given = 0;
  others.forEach((k, i) => {
    if (i === others.length - 1) out[k] = tenth(rest - given);
    else { out[k] = tenth(sum > 0 ? (weights[k] / sum) * rest : rest / others.length); given = tenth(given + out[k]); }
  });
  return out;
}

/** What to serve: one variant, or a percentage rollout. */
export function serveEditor(def, serve, pointer, label, changed, rerender) {
  const variants = Object.keys(def.variants || {});
  const mode = h('select', { dataset: { pointer } },
    h('option', { value: 'variant', selected: !serve.rollout }, 'a variant'),
    h('option', { value: 'rollout', selected: !!serve.rollout }, 'a percentage rollout'));
  mode.addEventListener('change', () => {
    if (mode.value === 'rollout') {
      delete serve.variant;
      const n = variants.length;
      const each = tenth(100 / Math.max(n, 1));
      serve.rollout = { weights: Object.fromEntries(variants.map((k, i) => [k, i === n - 1 ? tenth(100 - each * (n - 1)) : each])) };
    } else {
      delete serve.rollout;
      serve.variant = variants[0];
    }
    changed(); rerender();
  });
  const parts = [field(`${label}: serve`, mode)];
  if (!serve.rollout) {
    const sel = h('select', { dataset: { pointer: `${pointer}/variant` } },
      variants.map((k) => h('option', { value: k, selected: serve.variant === k }, k)));
    if (!serve.variant && variants.length) { serve.variant = variants[0]; }
    sel.addEventListener('change', () => { serve.variant = sel.value; changed(); });
    parts.push(field(`${label}: variant`, sel));
  } else {
    const weights = serve.rollout.weights;
    for (const k of variants) if (!(k in weights)) weights[k] = 0;
    const total = h('span', { class: 'total', 'aria-live': 'polite' });
    const inputs = {};
    const refresh = () => {
      for (const k of variants) { inputs[k].num.value = String(serve.rollout.weights[k]); inputs[k].range.value = String(serve.rollout.weights[k]); }
      total.textContent = `Total: ${tenth(Object.values(serve.rollout.weights).reduce((s, x) => s + x, 0))} %`;
    };
    const set = (k, v) => { serve.rollout.weights = rebalance(serve.rollout.weights, k, v); refresh(); changed(); };
    const rows = variants.map((k) => {
      const num = h('input', { type: 'number', min: '0', max: '100', step: '0.1', 'aria-label': `${label}: weight of ${k} (percent)`, dataset: { pointer: `${pointer}/rollout/weights/${k}` } });
      const range = h('input', { type: 'range', min: '0', max: '100', step: '1', 'aria-label': `${label}: weight of ${k} (slider)` });
      num.addEventListener('change', () => set(k, Number(num.value) || 0));
      range.addEventListener('input', () => set(k, Number(range.value)));
      inputs[k] = { num, range };
      return h('div', { class: 'row' }, h('span', { style: null }, h('code', {}, k)), range, num, '%');
    });
    const bucketBy = h('input', { type: 'text', value: serve.rollout.bucketBy || '', placeholder: 'targetingKey', dataset: { pointer: `${pointer}/rollout/bucketBy` } });
    bucketBy.addEventListener('input', () => { if (bucketBy.value.trim()) serve.rollout.bucketBy = bucketBy.value.trim(); else delete serve.rollout.bucketBy; changed(); });
    const salt = h('input', { type: 'text', value: serve.rollout.salt || '', placeholder: 'the flag key', dataset: { pointer: `${pointer}/rollout/salt` } });
    salt.addEventListener('input', () => { if (salt.value) serve.rollout.salt = salt.value; else delete serve.rollout.salt; changed(); });
    parts.push(h('div', { class: 'weights panel sub', role: 'group', 'aria-label': `${label}: rollout weights` }, rows, total,
      h('div', { class: 'row' }, field('Bucket by attribute', bucketBy), field('Salt', salt))));
    refresh();
  }
  return h('div', {}, parts);
}

/** One clause: attribute, operator, values, negate. */
export function clauseEditor(clause, pointer, n, changed, remove) {
  const attr = h('input', { type: 'text', value: clause.attribute || '', placeholder: 'email', dataset: { pointer: `${pointer}/attribute` } });
  const op = h('select', { dataset: { pointer: `${pointer}/op` } }, OPERATORS.map(([v, l]) => h('option', { value: v, selected: clause.op === v }, `${l} (${v})`)));
  const values = h('input', { type: 'text', value: valuesText(clause.values), size: '28', placeholder: 'a, b, "quoted, text"', dataset: { pointer: `${pointer}/values` } });
  const negate = h('input', { type: 'checkbox', checked: !!clause.negate });
  const sync = () => {
    clause.attribute = attr.value.trim();
    clause.op = op.value;
    clause.values = op.value === 'exists' ? [] : parseValues(values.value, op.value);
    if (negate.checked) clause.negate = true; else delete clause.negate;
    values.disabled = op.value === 'exists';
    changed();
  };
  for (const el of [attr, values]) el.addEventListener('input', sync);
  for (const el of [op, negate]) el.addEventListener('change', sync);
  values.disabled = clause.op === 'exists';
  return h('div', { class: 'clause', role: 'group', 'aria-label': `Clause ${n}` },
    field(`Clause ${n}: attribute`, attr), field('operator', op), field('values', values),
    h('label', { class: 'row' }, negate, 'negate'),
    h('button', { type: 'button', class: 'danger', 'aria-label': `Remove clause ${n}`, onclick: remove }, 'Remove'));
}

/** Rules in order: name, clauses (all must hold), what to serve. */
export function rulesEditor(def, changed, rerender) {
  const rules = def.rules || [];
  const items = rules.map((rule, i) => {
    const p = `/rules/${i}`;
    const name = h('input', { type: 'text', value: rule.name || '', dataset: { pointer: `${p}/name` } });
    name.addEventListener('input', () => { if (name.value.trim()) rule.name = name.value.trim(); else delete rule.name; changed(); });
    rule.clauses = rule.clauses || [];
    const clauses = rule.clauses.map((c, j) => clauseEditor(c, `${p}/clauses/${j}`, j + 1, changed,
      () => { rule.clauses.splice(j, 1); changed(); rerender(); }));
    const move = (d) => { const [r] = rules.splice(i, 1); rules.splice(i + d, 0, r); changed(); rerender(); };
    return h('section', { class: 'panel sub', 'aria-labelledby': `rule-h-${i}`, dataset: { pointer: p } },
      h('div', { class: 'row' }, h('h3', { id: `rule-h-${i}` }, `Rule ${i + 1}${rule.name ? `: ${rule.name}` : ''}`),
        h('button', { type: 'button', disabled: i === 0, onclick: () => move(-1), 'aria-label': `Move rule ${i + 1} up` }, 'Up'),
        h('button', { type: 'button', disabled: i === rules.length - 1, onclick: () => move(1), 'aria-label': `Move rule ${i + 1} down` }, 'Down'),
        h('button', { type: 'button', class: 'danger', onclick: () => { rules.splice(i, 1); if (!rules.length) delete def.rules; changed(); rerender(); } }, `Remove rule ${i + 1}`)),
      field(`Rule ${i + 1} name`, name),
      h('p', { class: 'muted' }, 'Every clause must hold.'),
      clauses,
      h('button', { type: 'button', onclick: () => { rule.clauses.push({ attribute: '', op: 'in', values: [] }); changed(); rerender(); } }, `Add clause to rule ${i + 1}`),
      serveEditor(def, rule.serve, `${p}/serve`, `Rule ${i + 1}`, changed, rerender));
  });
  const add = h('button', { type: 'button', onclick: () => {
    def.rules = [...rules, { clauses: [{ attribute: '', op: 'in', values: [] }], serve: { variant: Object.keys(def.variants || {})[0] } }];
    changed(); rerender();
  } }, 'Add rule');
  return h('section', { class: 'panel', 'aria-labelledby': 'rules-h' }, h('h2', { id: 'rules-h' }, 'Rules'),
    rules.length ? null : h('p', { class: 'muted' }, 'No rules: everyone not targeted gets the default.'), items, add);
}
