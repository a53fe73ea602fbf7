#!/usr/bin/env node
// Sets up a local network for the example with the SDK and the operator's admin token: a provider with a node
// (registered, staked, posting unit prices for confidential traffic) and a user with $10 of credits. Prints
// one JSON line with what the agent and the client need: the node token, the unit prices in the agent's
// EE_UNIT_PRICES form, and the user's API key (shown once).
//   EE_URL           control plane API (default http://127.0.0.1:8088)
//   EE_ADMIN_TOKEN   the operator's admin token
import { randomBytes } from 'node:crypto';
import { EasyEnclave } from '@easyenclave/sdk';

const url = process.env.EE_URL ?? 'http://127.0.0.1:8088';
/** micro-USD per 1,000 units: $0.15 per million prompt tokens, $0.60 per million completion tokens, ... */
const PRICES = { tokens_in: 150, tokens_out: 600, requests: 1000, bytes: 1 };
const run = randomBytes(4).toString('hex');

const admin = new EasyEnclave({ url, adminToken: process.env.EE_ADMIN_TOKEN });
const provider = await admin.createAccount({ kind: 'provider', name: `inference-provider-${run}` });
const user = await admin.createAccount({ kind: 'user', name: `inference-user-${run}` });
await admin.purchaseCredits({ account: provider.account_id, amount: '$100', payment_ref: `example-p-${run}` });
await admin.purchaseCredits({ account: user.account_id, amount: '$10', payment_ref: `example-u-${run}` });

const p = new EasyEnclave({ url, apiKey: provider.api_key });
const node = await p.registerNode({ region: 'local', tier: 'economy', vcpus: 1, price_per_vcpu_hour: '$0.05' });
await p.stake(node.node_id, '$2');
await p.setUnitPrices(node.node_id, PRICES);

process.stdout.write(
  `${JSON.stringify({
    node_id: node.node_id,
    node_token: node.node_token,
    unit_prices: Object.entries(PRICES)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    user: user.account_id,
    user_api_key: user.api_key,
  })}\n`,
);
