// Evaluates Vexil's flagd translation with the official JavaScript flagd
// provider (in-process, reading the document from a file) and compares every
// answer with the one Vexil's engine gave for the native document.
//
// Usage: node differential.mjs CASES.json (the format of
// ../python/differential.py, written by
// crates/vexil/tests/it/flagd_differential.rs). Exits 0 when every case
// agrees, 1 with a diff of each mismatch otherwise.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OpenFeature } from '@openfeature/server-sdk';
import { FlagdProvider } from '@openfeature/flagd-provider';

const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vexil-flagd-'));
const file = path.join(dir, 'flags.json');
fs.writeFileSync(file, JSON.stringify(cases.document));

// The provider logs every targeting error; the diff below is what matters.
const quiet = { error() {}, warn() {}, info() {}, debug() {} };
await OpenFeature.setProviderAndWait(
  new FlagdProvider({ resolverType: 'in-process', offlineFlagSourcePath: file }, quiet),
);
const client = OpenFeature.getClient();
const defaults = { boolean: false, string: '', number: 0, object: {} };
const get = {
  boolean: (k, d, c) => client.getBooleanDetails(k, d, c),
  string: (k, d, c) => client.getStringDetails(k, d, c),
  number: (k, d, c) => client.getNumberDetails(k, d, c),
  object: (k, d, c) => client.getObjectDetails(k, d, c),
};

// JSON equality with numbers by value and object keys in any order.
function same(a, b) {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same(a[k], b[k]));
  }
  return a === b;
}

let failures = 0;
for (const [n, c] of cases.cases.entries()) {
  const d = await get[c.type](c.flag, defaults[c.type], c.context);
  const got = {
    value: d.value,
    variant: d.variant ?? null,
    reason: d.reason,
    errorCode: d.errorCode ?? null,
    metadata: d.flagMetadata ?? {},
  };
  const want = c.expect;
  const bad =
    got.variant !== want.variant ||
    (want.variant !== null && !same(got.value, want.value)) ||
    got.reason !== want.reason ||
    got.errorCode !== want.errorCode ||
    ('metadata' in want && !same(got.metadata, want.metadata));
  if (bad) {
    failures += 1;
    if (failures <= 20) {
      console.error(
        `case ${n}: flag ${c.flag} (${c.type}), context ${JSON.stringify(c.context)}\n` +
          `  vexil: ${JSON.stringify(want)}\n  flagd: ${JSON.stringify(got)}\n` +
          `  flag:  ${JSON.stringify(cases.document.flags[c.flag] ?? null)}`,
      );
    }
  }
}
await OpenFeature.close();
fs.rmSync(dir, { recursive: true, force: true });
console.log(`${cases.cases.length} cases, ${failures} mismatches`);
process.exit(failures ? 1 : 0);
