// In Node, a client that verifies (the SDK's verify module, which only Node loads) seals with node:crypto, as
// the agent does; before it loads, the browser-safe default (WebCrypto) is in place.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sealCrypto } from '@easyenclave/protocol/seal/index';

test("loading the SDK's Node verifier switches sealing to node:crypto", async () => {
  assert.equal(sealCrypto().name, 'webcrypto');
  await import('@easyenclave/sdk/verify');
  assert.equal(sealCrypto().name, 'node:crypto');
});
