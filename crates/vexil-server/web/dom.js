// Small DOM helpers shared by the pages: element building, dialogs,
// announcements, and a line diff of two JSON values.

/** Builds an element: h('button', {class: 'primary', onclick}, 'Save'). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name === 'value') el.value = value;
    else if (name === 'checked') el.checked = !!value;
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let uid = 0;
/** A unique element id, for labels. */
export function newId(prefix = 'f') { uid += 1; return `${prefix}-${uid}`; }

/** A labelled form control: field('Key', input). */
export function field(label, control, hint) {
  if (!control.id) control.id = newId();
  const parts = [h('label', { for: control.id }, label), control];
  if (hint) {
    const hintId = newId('hint');
    control.setAttribute('aria-describedby', hintId);
    parts.push(h('small', { id: hintId, class: 'muted' }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

/** Tells screen reader users what happened. */
export function announce(text) {
  const live = document.getElementById('live');
  live.textContent = '';
  setTimeout(() => { live.textContent = text; }, 30);
}

/** Replaces an element's children (arrays flattened, nothing for null). */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Replaces the page's content. */
export function show(...nodes) {
  fill(document.getElementById('main'), ...nodes);
}

/**
 * A modal dialog with a title, a body and buttons; resolves with the value
 * of the button pressed (Escape resolves with null).
 */
export function modal(title, body, buttons) {
  return new Promise((resolve) => {
    const titleId = newId('dlg');
    const dlg = h('dialog', { 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title), body,
      h('div', { class: 'row', style: null },
        buttons.map((b) => h('button', {
          class: b.class, type: 'button',
          onclick: () => { dlg.close(); resolve(b.value); },
        }, b.label))));
    dlg.addEventListener('cancel', () => resolve(null));
    dlg.addEventListener('close', () => dlg.remove());
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** Asks a yes/no question. */
export function confirmAction(title, text, yes = 'Confirm', cls = 'primary') {
  return modal(title, h('p', {}, text), [
    { label: 'Cancel', value: false },
    { label: yes, value: true, class: cls },
  ]).then((v) => v === true);
}

/** Stable, indented JSON text. */
export function pretty(value) {
  return value === undefined ? '' : JSON.stringify(value, null, 2);
}

/**
 * Line diff of two values' JSON text (longest common subsequence): an
 * element with removed lines red, added lines green.
 */
export function diffView(before, after, label = 'Changes') {
  const a = pretty(before).split('\n').filter((l) => l !== '');
  const b = pretty(after).split('\n').filter((l) => l !== '');
  const n = a.length; const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const lines = [];
  let i = 0; let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { lines.push(h('div', {}, '  ' + a[i])); i += 1; j += 1; }
    else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) { lines.push(h('div', { class: 'add' }, '+ ' + b[j])); j += 1; }
    else { lines.push(h('div', { class: 'del' }, '- ' + a[i])); i += 1; }
  }
  return h('div', { class: 'diff', role: 'region', 'aria-label': label, tabindex: '0' }, lines);
}

/** A time in the reader's locale. */
export function when(ms) { return new Date(ms).toLocaleString(); }
