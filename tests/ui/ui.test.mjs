// Browser tests of the Vexil web UI (issue 10), run by
// crates/vexil-server/tests/it/ui_browser.rs against a server it started:
// VEXIL_URL, VEXIL_ADMIN_KEY, VEXIL_CHROMIUM (the browser binary) and
// VEXIL_SCREENSHOTS (where the README's pictures go).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const BASE = process.env.VEXIL_URL;
const KEY = process.env.VEXIL_ADMIN_KEY;
const SHOTS = process.env.VEXIL_SCREENSHOTS;
const DEV = `${BASE}/api/v1/projects/default/environments/development`;
const PROD = `${BASE}/api/v1/projects/default/environments/production`;
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let browser;

/** The admin API with the key, as another person (or a script) would. */
async function admin(method, url, body, headers = {}) {
  const resp = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  return { status: resp.status, body: text ? JSON.parse(text) : null };
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  return { context, page };
}

async function signIn(page, key = KEY) {
  await page.goto(`${BASE}/`);
  await page.getByLabel('Admin key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (key === KEY) await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

async function shot(page, name, fullPage = false) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage });
}

/** axe-core's serious and critical violations on the page. */
async function axe(page) {
  await page.evaluate(`${AXE};0`);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

const flagUrl = (env, key) => `${BASE}/ui/#/p/default/e/${env}/flags/${key}`;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.VEXIL_CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
});

after(async () => { await browser?.close(); });

test('a wrong key cannot sign in', async () => {
  const { context, page } = await newPage();
  await signIn(page, 'vxa_not-a-real-key-at-all');
  await page.getByText('Sign-in refused: unknown API key').waitFor();
  assert.deepEqual(await context.cookies(), [], 'no session cookie');
  assert.equal(await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)), '{}{}');
  await shot(page, 'signin');
  await context.close();
});

test('sign in, create a flag, add a rule with two clauses, set a 30/70 rollout, save after the diff', async () => {
  const { context, page } = await newPage();
  await signIn(page);
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  const cookies = await context.cookies();
  assert.equal(cookies.length, 1);
  assert.equal(cookies[0].httpOnly, true);
  assert.equal(cookies[0].sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the session');
  assert.equal(await page.evaluate(() => JSON.stringify(localStorage)), '{}', 'nothing in localStorage');

  await page.getByRole('link', { name: 'New flag' }).click();
  await page.getByLabel('Key').fill('checkout');
  await page.getByLabel('Description').fill('The new checkout flow');
  await page.getByRole('button', { name: 'Create flag' }).click();
  await page.getByRole('heading', { name: 'checkout', level: 1 }).waitFor();

  await page.getByRole('button', { name: 'Add rule' }).click();
  await page.getByLabel('Rule 1 name').fill('paying customers');
  await page.getByLabel('Clause 1: attribute').fill('plan');
  await page.getByLabel('operator').first().selectOption('in');
  await page.getByLabel('values').first().fill('pro, enterprise');
  await page.getByRole('button', { name: 'Add clause to rule 1' }).click();
  await page.getByLabel('Clause 2: attribute').fill('country');
  await page.getByLabel('operator').nth(1).selectOption('notIn');
  await page.getByLabel('values').nth(1).fill('US');
  await page.getByLabel('Rule 1: variant').selectOption('on');

  await page.getByLabel('Default: serve').selectOption('rollout');
  const on = page.getByLabel('Default: weight of on (percent)');
  await on.fill('30');
  await on.press('Tab');
  assert.equal(await page.getByLabel('Default: weight of off (percent)').inputValue(), '70', 'rebalanced to 100');
  await page.getByText('Total: 100 %').waitFor();

  await page.getByRole('button', { name: 'Review and save…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('"weights"').waitFor();
  await dialog.getByRole('button', { name: 'Save' }).click();
  await page.getByText(/Saved: version \d+/).waitFor();

  const { body } = await admin('GET', `${DEV}/flags/checkout`);
  const def = body.definition;
  assert.equal(def.rules.length, 1);
  assert.deepEqual(def.rules[0].clauses, [
    { attribute: 'plan', op: 'in', values: ['pro', 'enterprise'] },
    { attribute: 'country', op: 'notIn', values: ['US'] },
  ]);
  assert.deepEqual(def.defaultServe.rollout.weights, { on: 30, off: 70 });
  await shot(page, 'flag', true);
  await context.close();
});

test('problems from the API are shown at their field', async () => {
  const { context, page } = await newPage();
  await signIn(page);
  await page.goto(flagUrl('development', 'checkout'));
  await page.getByLabel('Clause 1: attribute').waitFor();
  await page.getByLabel('operator').first().selectOption('lt');
  await page.getByLabel('values').first().fill('not-a-number');
  await page.getByRole('button', { name: 'Review and save…' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await page.getByText('The server refused the change:').waitFor();
  const values = page.getByLabel('values').first();
  assert.equal(await values.getAttribute('aria-invalid'), 'true');
  const described = await values.getAttribute('aria-describedby');
  assert.ok(await page.locator(`#${described}`).isVisible());
  await context.close();
});

test('toggle off and on, with a confirmation in production', async () => {
  await admin('PUT', `${PROD}/flags/checkout`, { variants: { on: true, off: false }, offVariant: 'off', defaultServe: { variant: 'on' }, enabled: false }, { 'If-None-Match': '*' });
  const { context, page } = await newPage();
  await signIn(page);
  // Development: no question asked.
  await page.goto(flagUrl('development', 'checkout'));
  await page.getByRole('button', { name: /Turn on in/ }).click();
  await page.locator('#state', { hasText: 'on' }).waitFor();
  await page.getByRole('button', { name: /Turn off in/ }).click();
  await page.locator('#state', { hasText: 'off' }).waitFor();
  // Production: asked, and cancelling changes nothing.
  await page.goto(flagUrl('production', 'checkout'));
  await page.getByRole('button', { name: /Turn on in/ }).click();
  let dialog = page.getByRole('dialog', { name: 'Turn on in production?' });
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await admin('GET', `${PROD}/flags/checkout`)).body.definition.enabled, false);
  await page.getByRole('button', { name: /Turn on in/ }).click();
  dialog = page.getByRole('dialog', { name: 'Turn on in production?' });
  await dialog.getByRole('button', { name: 'Turn on in production' }).click();
  await page.locator('#state', { hasText: 'on' }).waitFor();
  assert.equal((await admin('GET', `${PROD}/flags/checkout`)).body.definition.enabled, true);
  await page.getByRole('button', { name: /Turn off in/ }).click();
  await page.getByRole('dialog', { name: 'Turn off in production?' }).getByRole('button', { name: 'Turn off in production' }).click();
  await page.locator('#state', { hasText: 'off' }).waitFor();
  assert.equal((await admin('GET', `${PROD}/flags/checkout`)).body.definition.enabled, false);
  await context.close();
});

test('the audit log shows the changes with who made them and a diff', async () => {
  const { context, page } = await newPage();
  await signIn(page);
  await page.goto(`${BASE}/ui/#/p/default/e/development/audit`);
  const entries = page.locator('ol.audit > li');
  await entries.first().waitFor();
  assert.ok(await entries.count() >= 4, 'create, update, two toggles');
  const text = await page.locator('ol.audit').innerText();
  assert.match(text, /toggle/i);
  assert.match(text, /flag checkout/);
  assert.match(text, /by admin/);
  await entries.first().locator('summary').click();
  await entries.first().locator('.diff .add, .diff .del').first().waitFor();
  await shot(page, 'audit');
  // And on the flag's page.
  await page.goto(flagUrl('development', 'checkout'));
  await page.locator('#audit-h').waitFor();
  await page.locator('section[aria-labelledby="audit-h"] ol.audit > li').first().waitFor();
  await context.close();
});

test('two people edit the same flag: the second gets the conflict view', async () => {
  const a = await newPage();
  const b = await newPage();
  await signIn(a.page);
  await signIn(b.page);
  await a.page.goto(flagUrl('development', 'checkout'));
  await b.page.goto(flagUrl('development', 'checkout'));
  await a.page.getByLabel('Description').waitFor();
  await b.page.getByLabel('Tags (comma separated)').fill('checkout, payments');
  await a.page.getByLabel('Description').fill('Edited by A');
  await a.page.getByRole('button', { name: 'Review and save…' }).click();
  await a.page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await a.page.getByText(/Saved: version/).waitFor();
  // B is warned live, and its edits are kept.
  await b.page.locator('#stale-warning').waitFor();
  assert.equal(await b.page.getByLabel('Tags (comma separated)').inputValue(), 'checkout, payments');
  await b.page.getByRole('button', { name: 'Review and save…' }).click();
  await b.page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  const conflict = b.page.locator('#conflict');
  await conflict.waitFor();
  await conflict.getByText('Someone else saved this flag first').waitFor();
  await conflict.locator('.diff .add', { hasText: 'Edited by A' }).waitFor();
  await shot(b.page, 'conflict');
  await conflict.getByRole('button', { name: 'Re-apply my edits on their version' }).click();
  await b.page.getByRole('button', { name: 'Review and save…' }).click();
  await b.page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await b.page.getByText(/Saved: version/).waitFor();
  const def = (await admin('GET', `${DEV}/flags/checkout`)).body.definition;
  assert.equal(def.description, 'Edited by A', 'their change kept');
  assert.deepEqual(def.tags, ['checkout', 'payments'], 'my change applied');
  await a.context.close();
  await b.context.close();
});

test('create a key (the secret shown once) and revoke it', async () => {
  const { context, page } = await newPage();
  await signIn(page);
  await page.getByRole('link', { name: 'API keys' }).click();
  const main = page.locator('main');
  await main.getByLabel('Name').fill('ci-reader');
  await main.getByLabel('Scope').selectOption('server');
  await main.getByLabel('Project').selectOption('default');
  await main.getByLabel('Environment').selectOption('development');
  await page.getByRole('button', { name: 'Create key' }).click();
  const secret = (await page.locator('#new-secret').innerText()).trim();
  assert.match(secret, /^vxs_[0-9a-f]{64}$/);
  await page.getByRole('row', { name: /ci-reader/ }).getByRole('button', { name: 'Revoke ci-reader' }).waitFor();
  await shot(page, 'keys');
  await page.getByRole('button', { name: 'Revoke ci-reader' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('row', { name: /ci-reader.*revoked/ }).waitFor();
  const r = await fetch(`${BASE}/api/v1/snapshot`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(r.status, 401, 'the revoked key is refused');
  await context.close();
});

test('create a segment, add a member and a rule, save', async () => {
  const { context, page } = await newPage();
  await signIn(page);
  await page.getByRole('link', { name: 'Segments' }).click();
  await page.getByLabel('New segment key').fill('beta-testers');
  await page.getByRole('button', { name: 'Create segment' }).click();
  await page.getByRole('heading', { name: 'Segment beta-testers' }).waitFor();
  await page.getByLabel('Included targeting keys').fill('user-7, user-8');
  await page.getByRole('button', { name: 'Add segment rule' }).click();
  await page.getByLabel('Clause 1: attribute').fill('email');
  await page.getByLabel('operator').selectOption('endsWith');
  await page.getByLabel('values').fill('@example.com');
  await page.getByRole('button', { name: 'Review and save…' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await page.getByText(/Saved: version \d+/).waitFor();
  const def = (await admin('GET', `${DEV}/segments/beta-testers`)).body.definition;
  assert.deepEqual(def, { included: ['user-7', 'user-8'], rules: [{ clauses: [{ attribute: 'email', op: 'endsWith', values: ['@example.com'] }] }] });
  await context.close();
});

test('a segment: problems from the API at their field; a concurrent change gets the conflict view', async () => {
  const segment = `${BASE}/ui/#/p/default/e/development/segments/beta-testers`;
  const a = await newPage();
  const b = await newPage();
  await signIn(a.page);
  await signIn(b.page);
  // A problem the server finds is shown beside the control it is about.
  await b.page.goto(segment);
  await b.page.getByLabel('Clause 1: attribute').waitFor();
  await b.page.getByLabel('operator').selectOption('lt');
  await b.page.getByLabel('values').fill('not-a-number');
  await b.page.getByRole('button', { name: 'Review and save…' }).click();
  await b.page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await b.page.getByText('The server refused the change:').waitFor();
  const values = b.page.getByLabel('values');
  assert.equal(await values.getAttribute('aria-invalid'), 'true');
  const described = b.page.locator(`#${await values.getAttribute('aria-describedby')}`);
  assert.match(await described.innerText(), /number/);
  assert.equal((await admin('GET', `${DEV}/segments/beta-testers`)).body.definition.rules[0].clauses[0].op, 'endsWith', 'nothing saved');
  await b.page.getByLabel('operator').selectOption('endsWith');
  await b.page.getByLabel('values').fill('@example.com');
  assert.equal(await values.getAttribute('aria-invalid'), null, 'editing the field takes the mark away');
  // Both open the segment; A saves first; B gets the conflict view.
  await b.page.getByLabel('Excluded targeting keys').fill('user-9');
  await a.page.goto(segment);
  await a.page.getByLabel('Description').fill('People who try things first');
  await a.page.getByRole('button', { name: 'Review and save…' }).click();
  await a.page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await a.page.getByText(/Saved: version/).waitFor();
  await b.page.locator('#stale-warning').waitFor();
  await b.page.getByRole('button', { name: 'Review and save…' }).click();
  await b.page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  const conflict = b.page.locator('#conflict');
  await conflict.getByText('Someone else saved this segment first').waitFor();
  await conflict.locator('.diff .add', { hasText: 'People who try things first' }).waitFor();
  await conflict.getByRole('button', { name: 'Re-apply my edits on their version' }).click();
  assert.equal(await b.page.getByLabel('Description').inputValue(), 'People who try things first');
  assert.equal(await b.page.getByLabel('Excluded targeting keys').inputValue(), 'user-9');
  await b.page.getByRole('button', { name: 'Review and save…' }).click();
  await b.page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await b.page.getByText(/Saved: version/).waitFor();
  const def = (await admin('GET', `${DEV}/segments/beta-testers`)).body.definition;
  assert.equal(def.description, 'People who try things first', 'their change kept');
  assert.deepEqual(def.excluded, ['user-9'], 'my change applied');
  assert.deepEqual(def.included, ['user-7', 'user-8']);
  await a.context.close();
  await b.context.close();
});

test('the playground explains a rule match and a rollout', async () => {
  const { context, page } = await newPage();
  await signIn(page);
  await admin('POST', `${DEV}/flags/checkout/toggle`, { enabled: true });
  await page.getByRole('link', { name: 'Playground' }).click();
  const context1 = { targetingKey: 'user-1', plan: 'pro', country: 'NL' };
  await page.getByLabel('Context (JSON)').fill(JSON.stringify(context1));
  await page.getByRole('button', { name: 'Evaluate' }).click();
  let section = page.locator('section[data-flag="checkout"]');
  await section.waitFor();
  let text = await section.innerText();
  assert.match(text, /Rule 1 \(paying customers\): matched/);
  assert.match(text, /plan in \["pro","enterprise"\] — context has "pro": holds/);
  assert.match(text, /country notIn \["US"\] — context has "NL": holds/);
  assert.match(text, /decided by rule 1/);
  // The JSON shows as attribute rows, and rows entered by keyboard give
  // the same context and the same explained result.
  assert.equal(await page.getByLabel('Targeting key').inputValue(), 'user-1');
  assert.equal(await page.getByLabel('Attribute 1 name').inputValue(), 'plan');
  assert.equal(await page.getByLabel('Attribute 2 value').inputValue(), 'NL');
  await page.getByLabel('Context (JSON)').fill('{}');
  assert.equal(await page.getByLabel('Targeting key').inputValue(), '');
  assert.equal(await page.getByLabel('Attribute 1 name').count(), 0);
  await page.getByLabel('Targeting key').fill('user-1');
  for (const [name, value] of [['plan', 'pro'], ['country', 'NL'], ['age', '42']]) {
    await page.getByRole('button', { name: 'Add attribute' }).focus();
    await page.keyboard.press('Enter');
    await page.keyboard.type(name);
    await page.keyboard.press('Tab');
    await page.keyboard.type(value);
  }
  await page.getByRole('button', { name: 'Remove attribute 3' }).click();
  assert.deepEqual(JSON.parse(await page.getByLabel('Context (JSON)').inputValue()), context1);
  await page.evaluate(() => document.getElementById('results').replaceChildren());
  await page.getByRole('button', { name: 'Evaluate' }).click();
  await page.locator('section[data-flag="checkout"]').waitFor();
  assert.equal(await page.locator('section[data-flag="checkout"]').innerText(), text, 'the same result as from the JSON');
  await page.getByLabel('Attribute 2 value').fill('42');
  assert.deepEqual(JSON.parse(await page.getByLabel('Context (JSON)').inputValue()), { ...context1, country: 42 }, 'a value that reads as JSON');
  await page.getByLabel('Attribute 2 value').fill('NL');
  await page.getByLabel('Attribute 2 value').blur();
  await shot(page, 'playground');
  await page.getByLabel('Context (JSON)').fill(JSON.stringify({ targetingKey: 'user-2', plan: 'free' }));
  await page.getByRole('button', { name: 'Evaluate' }).click();
  section = page.locator('section[data-flag="checkout"]');
  await section.getByText(/Rollout by targetingKey = "user-2"/).waitFor();
  text = await section.innerText();
  assert.match(text, /did not match/);
  assert.match(text, /does not hold/);
  assert.match(text, /bucket \d+ of \d+/);
  assert.match(text, /decided by default/);
  // Bad JSON is named, not sent.
  await page.getByLabel('Context (JSON)').fill('{nope');
  await page.getByRole('button', { name: 'Evaluate' }).click();
  await page.getByText(/Not valid JSON/).waitFor();
  await context.close();
});

test('a change made through the API appears on open pages without reload', async () => {
  const { context, page } = await newPage();
  await admin('POST', `${DEV}/flags/checkout/toggle`, { enabled: false });
  await signIn(page);
  await page.goto(flagUrl('development', 'checkout'));
  await page.locator('#state', { hasText: 'off' }).waitFor();
  const marker = await page.evaluate(() => { window.notReloaded = true; return true; });
  await admin('POST', `${DEV}/flags/checkout/toggle`, { enabled: true });
  await page.locator('#state', { hasText: 'on' }).waitFor();
  await page.getByText(/someone else changed this flag/).waitFor();
  assert.equal(await page.evaluate(() => window.notReloaded), marker);
  // The list too.
  await page.goto(`${BASE}/ui/#/p/default/e/development/flags`);
  await page.getByRole('link', { name: 'checkout' }).waitFor();
  await admin('PUT', `${DEV}/flags/dark-mode`, { variants: { on: true, off: false }, offVariant: 'off', defaultServe: { variant: 'on' }, tags: ['ui'] }, { 'If-None-Match': '*' });
  await page.getByRole('link', { name: 'dark-mode' }).waitFor();
  assert.equal(await page.evaluate(() => window.notReloaded), true);
  await shot(page, 'flags');
  await context.close();
});

test('the list shows the state in other environments of flags beyond the first 500', async () => {
  // 600 flags in both environments, sorting after the others; the last
  // is on in production only, and tagged in development.
  const bulk = (enabled, last) => ({
    flags: Object.fromEntries(Array.from({ length: 600 }, (_, i) => {
      const key = `zbulk-${String(i).padStart(3, '0')}`;
      const def = { variants: { on: true, off: false }, offVariant: 'off', defaultServe: { variant: 'on' }, enabled: false };
      return [key, i === 599 ? { ...def, ...last } : def];
    })),
  });
  assert.equal((await admin('POST', `${DEV}/import`, bulk(false, { tags: ['far'] }))).status, 200);
  assert.equal((await admin('POST', `${PROD}/import`, bulk(false, { enabled: true }))).status, 200);
  const { context, page } = await newPage();
  await signIn(page);
  await page.getByText('Page 1: 20 flags').waitFor();
  const reads = [];
  page.on('request', (r) => { if (r.url().includes('/environments/production/flags')) reads.push(r.url()); });
  await page.getByLabel('Tag').fill('far');
  await page.getByRole('button', { name: 'Filter' }).click();
  const row = page.getByRole('row', { name: /zbulk-599/ });
  await row.waitFor();
  await page.getByText('Page 1: 1 flag').waitFor();
  const cells = await row.getByRole('cell').allInnerTexts();
  assert.deepEqual(cells.slice(2, 4).map((c) => c.trim()), ['off', 'on'], 'development off, production on');
  // Production is read as a list, 500 a request, on to the page's last
  // key, never flag by flag (the list may load again when its live
  // events connect, hence no exact count).
  assert.ok(reads.every((u) => u.includes('/flags?limit=500')), reads.join(' '));
  const second = reads.filter((u) => u.includes('after='));
  assert.ok(second.length >= 1 && second.every((u) => u.endsWith('after=zbulk-498')), reads.join(' '));
  // The last page of the unfiltered list too (20 a page: zbulk-580 on).
  await page.getByLabel('Tag').fill('');
  await page.getByLabel('Search by key').fill('zbulk');
  await page.getByRole('button', { name: 'Filter' }).click();
  for (let i = 0; i < 29; i += 1) {
    await page.getByText(`Page ${i + 1}:`).waitFor();
    await page.getByRole('button', { name: 'Next page' }).click();
  }
  await page.getByText('Page 30: 20 flags').waitFor();
  const last = await page.getByRole('row', { name: /zbulk-599/ }).getByRole('cell').allInnerTexts();
  assert.deepEqual(last.slice(2, 4).map((c) => c.trim()), ['off', 'on']);
  const other = await page.getByRole('row', { name: /zbulk-598/ }).getByRole('cell').allInnerTexts();
  assert.deepEqual(other.slice(2, 4).map((c) => c.trim()), ['off', 'off']);
  await context.close();
});

test('axe-core finds no serious or critical violations', async () => {
  const { context, page } = await newPage();
  await page.goto(`${BASE}/ui/`);
  await page.getByLabel('Admin key').waitFor();
  const found = { signin: await axe(page) };
  await signIn(page);
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  for (const [name, hash, ready] of [
    ['flags', '#/p/default/e/development/flags', 'a[href$="/flags/checkout"]'],
    ['flag', '#/p/default/e/development/flags/checkout', '#audit-h'],
    ['new flag', '#/p/default/e/development/new', 'form'],
    ['audit', '#/p/default/e/development/audit', 'ol.audit'],
    ['keys', '#/keys', 'table'],
    ['playground', '#/p/default/e/development/playground', 'form'],
    ['segment', '#/p/default/e/development/segments/beta-testers', '#save'],
  ]) {
    await page.goto(`${BASE}/ui/${hash}`);
    await page.locator(ready).first().waitFor();
    if (name === 'playground') {
      await page.getByRole('button', { name: 'Evaluate' }).click();
      await page.locator('section[data-flag]').first().waitFor();
    }
    found[name] = await axe(page);
  }
  for (const [name, v] of Object.entries(found)) assert.deepEqual(v, [], `${name}: ${v.join('; ')}`);
  // Keyboard: a page change moves focus to the content; Tab reaches its
  // first control, with a visible focus ring; Enter in a form submits.
  await page.goto(`${BASE}/ui/#/keys`);
  await page.locator('main table').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'name');
  assert.equal(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), 'solid');
  await page.keyboard.type('typed-key');
  await page.keyboard.press('Enter');
  await page.locator('#new-secret').waitFor();
  await context.close();
});

test('a cross-site form post is refused', async () => {
  // A page of another origin with a form aimed at the admin API.
  const target = `${DEV}/flags/checkout/toggle`;
  const evil = createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html');
    res.end(`<form method="post" action="${target}" enctype="text/plain"><input name='{"enabled":false,"x":"' value='"}'><button>Win a prize</button></form>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  const port = evil.address().port;
  const before = (await admin('GET', `${DEV}/flags/checkout`)).body;
  const { context, page } = await newPage();
  await signIn(page);
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  // Same host, another port: the same site, so the browser sends the
  // strict cookie; the missing CSRF token refuses it. From another host
  // name, a cross-site request: the cookie is not even sent.
  for (const host of ['127.0.0.1', 'localhost']) {
    await page.goto(`http://${host}:${port}/`);
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.url() === target),
      page.getByRole('button', { name: 'Win a prize' }).click(),
    ]);
    assert.ok([401, 403].includes(resp.status()), `${host}: ${resp.status()}`);
    if (host === '127.0.0.1') assert.equal((await resp.json()).code, 'csrf_refused');
  }
  const now = (await admin('GET', `${DEV}/flags/checkout`)).body;
  assert.equal(now.version, before.version, 'nothing changed');
  evil.close();
  await context.close();
});

test('signing out ends the session', async () => {
  const { context, page } = await newPage();
  await signIn(page);
  // Once the first page is drawn (the top bar is redrawn with each page).
  await page.getByRole('heading', { name: /^Flags in/ }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('Signed out.').waitFor();
  await page.goto(`${BASE}/ui/#/keys`);
  await page.getByLabel('Admin key').waitFor();
  await context.close();
});
