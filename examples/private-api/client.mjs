#!/usr/bin/env node
// Reaches the private API through the control plane with the SDK: connect (verifying the app's agent first
// unless it runs on a sandbox network), then GET and POST through the tunnel. Prints one JSON line per step.
//   EE_URL       control plane API (default http://127.0.0.1:8088)
//   EE_APP       app name (default private-api)
//   EE_NETWORK   the network you expect (e.g. forge-1); sandbox-1 skips verification by default
//   EE_POLICY    path of an attestation policy JSON file (needed to verify TDX agents)
import { readFileSync } from 'node:fs';
import { AttestationError, EasyEnclave, EasyEnclaveError } from '@easyenclave/sdk';

const ee = new EasyEnclave({
  url: process.env.EE_URL ?? 'http://127.0.0.1:8088',
  ...(process.env.EE_NETWORK ? { network: process.env.EE_NETWORK } : {}),
  ...(process.env.EE_POLICY ? { policy: JSON.parse(readFileSync(process.env.EE_POLICY, 'utf8')) } : {}),
  timeout_ms: 10_000,
});
const out = (step, value) => process.stdout.write(`${JSON.stringify({ step, ...value })}\n`);

try {
  const app = await ee.connect(process.env.EE_APP ?? 'private-api');
  out('connected', {
    verified: app.verified ? { evidence_type: app.verified.evidence_type, agent_id: app.verified.agent_id } : null,
  });
  out('private', await (await app.get('/api/private')).json());
  out('created', await (await app.post('/api/notes', { text: 'hello from the SDK' })).json());
  out('notes', await (await app.get('/api/notes')).json());
} catch (err) {
  if (err instanceof AttestationError) out('refused', { reasons: err.reasons });
  else if (err instanceof EasyEnclaveError)
    out('error', { kind: err.kind, status: err.status, code: err.code, message: err.message });
  else throw err;
  process.exitCode = 1;
}
