// Evaluates flags against a Vexil server with the official OpenFeature JS
// server SDK and OFREP provider, and prints the results as JSON.
// Env: VEXIL_URL (base URL), VEXIL_CLIENT_KEY (a client key).
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const key = process.env.VEXIL_CLIENT_KEY;
await OpenFeature.setProviderAndWait(
  new OFREPProvider({ baseUrl: process.env.VEXIL_URL, headers: [['Authorization', `Bearer ${key}`]] }),
);
const client = OpenFeature.getClient();
const details = (d) => ({ value: d.value, variant: d.variant ?? null, reason: d.reason, errorCode: d.errorCode ?? null });
const user = { targetingKey: 'u1', plan: 'pro' };
const out = {
  checkout: details(await client.getBooleanDetails('checkout', false, user)),
  ratio: details(await client.getNumberDetails('ratio', 0, user)),
  count: details(await client.getNumberDetails('count', 0, user)),
  dark: details(await client.getBooleanDetails('dark', true, user)),
  missing: details(await client.getBooleanDetails('nope', true, user)),
  'split-no-key': details(await client.getStringDetails('split', 'fallback', {})),
  'no-context': details(await client.getBooleanDetails('checkout', true)),
};
const sorted = Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
console.log(JSON.stringify(sorted));
