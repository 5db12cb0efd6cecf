// Evaluates flags against a Vexil server with the official OpenFeature web
// SDK and OFREP web provider (bulk evaluation, ETag), run in Node, and
// prints the results as JSON. Env: VEXIL_URL, VEXIL_CLIENT_KEY.
import { OpenFeature } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

const key = process.env.VEXIL_CLIENT_KEY;
const provider = new OFREPWebProvider({
  baseUrl: process.env.VEXIL_URL,
  headers: [['Authorization', `Bearer ${key}`]],
  cacheMode: 'disabled',
  changeDetection: 'none',
});
const details = (d) => ({ value: d.value, variant: d.variant ?? null, reason: d.reason, errorCode: d.errorCode ?? null });
const out = {};
await OpenFeature.setContext({ targetingKey: 'u1', plan: 'pro' });
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();
out.checkout = details(client.getBooleanDetails('checkout', false));
out.ratio = details(client.getNumberDetails('ratio', 0));
out.count = details(client.getNumberDetails('count', 0));
out.dark = details(client.getBooleanDetails('dark', true));
out.missing = details(client.getBooleanDetails('nope', true));
await OpenFeature.setContext({});
out['split-no-key'] = details(client.getStringDetails('split', 'fallback'));
out['no-context'] = details(client.getBooleanDetails('checkout', true));
const sorted = Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
console.log(JSON.stringify(sorted));
await OpenFeature.close();
