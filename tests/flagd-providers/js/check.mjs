// Drives the official OpenFeature flagd provider for JavaScript against
// Vexil's gRPC services, for crates/vexil-server/tests/it/flagd_providers.rs.
//
// Usage: node check.mjs rpc|in-process, with VEXIL_GRPC (host:port) and
// VEXIL_SELECTOR. This provider cannot send request metadata, so the
// environment must be opened with --grpc-open-env.
//
// Speaks in lines, as the Python check does: one JSON object per step,
// and a line on standard input before the next step.
//  1. the evaluations of every flag type;
//  2. (after the test changed `ratio`) the configuration-change event's
//     flags (RPC mode) and the new value;
//  3. (after the test restarted the server and changed `ratio` back) the
//     value once the provider has reconnected.

import { createInterface } from 'node:readline';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { FlagdProvider } from '@openfeature/flagd-provider';

const mode = process.argv[2];
const [host, port] = process.env.VEXIL_GRPC.split(':');
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const details = (d) => ({
  value: d.value,
  variant: d.variant ?? null,
  reason: d.reason ?? null,
  errorCode: d.errorCode ?? null,
});

async function evaluate(client) {
  const pro = { targetingKey: 'user-1', plan: 'pro' };
  const gold = { targetingKey: 'user-1', tier: 'gold' };
  return {
    checkout: details(await client.getBooleanDetails('checkout', false, pro)),
    beta: details(await client.getBooleanDetails('beta', false, gold)),
    greeting: details(await client.getStringDetails('greeting', 'fallback')),
    ratio: details(await client.getNumberDetails('ratio', -1)),
    count: details(await client.getNumberDetails('count', -1)),
    theme: details(await client.getObjectDetails('theme', {})),
    missing: details(await client.getBooleanDetails('missing', true)),
  };
}

async function waitFor(pred, seconds) {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const got = await pred();
    if (got !== undefined) return got;
    await sleep(100);
  }
  return null;
}

const changed = new Set();
OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (d) => {
  for (const f of d?.flagsChanged ?? []) changed.add(f);
});
const provider = new FlagdProvider({
  host,
  port: Number(port),
  resolverType: mode,
  selector: process.env.VEXIL_SELECTOR,
  cache: 'disabled',
  deadlineMs: 2000,
  retryBackoffMs: 200,
  retryBackoffMaxMs: 1000,
  retryGracePeriod: 30,
});
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();
console.log(JSON.stringify(await evaluate(client)));

await lines.next();
const half = await waitFor(async () => {
  const v = await client.getNumberValue('ratio', -1);
  return v === 0.5 && (mode !== 'rpc' || changed.size > 0) ? v : undefined;
}, 10);
console.log(JSON.stringify({ changed: [...changed].sort(), ratio: half }));

await lines.next();
const two = await waitFor(async () => {
  const v = await client.getNumberValue('ratio', -1);
  return v === 2 ? v : undefined;
}, 30);
console.log(JSON.stringify({ ratio: two }));
await OpenFeature.close();
process.exit(0);
