// docs/protocol.md states the tunnel's message limits in bytes; they must be the numbers the code enforces.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAX_CONTROL_MESSAGE_BYTES, MAX_DATA_FRAME_BYTES, MAX_WS_MESSAGE_BYTES } from '@easyenclave/protocol';
import { WS_LIBRARY_MAX_PAYLOAD_BYTES } from '@easyenclave/control-plane/tunnel/hub';
import { REPO_ROOT } from '../helpers/network.js';

const doc = readFileSync(join(REPO_ROOT, 'docs/protocol.md'), 'utf8');
const bytes = (n: number) => n.toLocaleString('en-US');

test('the message limits in docs/protocol.md are the ones in the code', () => {
  assert.equal(MAX_WS_MESSAGE_BYTES, MAX_DATA_FRAME_BYTES + 64);
  const row = doc.split('\n').find((l) => l.startsWith('| binary WebSocket message |'));
  assert.ok(row?.includes(`${bytes(MAX_WS_MESSAGE_BYTES)} bytes`), row);
  const text = doc.split('\n').find((l) => l.startsWith('| text WebSocket message'));
  assert.ok(text?.includes(`${bytes(MAX_CONTROL_MESSAGE_BYTES)} bytes`), text);
  assert.ok(doc.includes(`**${bytes(MAX_WS_MESSAGE_BYTES)} bytes**`));
  assert.equal(WS_LIBRARY_MAX_PAYLOAD_BYTES, 4 * MAX_WS_MESSAGE_BYTES);
  // No stale figure of an older frame size is left anywhere in the document.
  for (const stale of [bytes(64 * 1024 + 64)]) assert.ok(!doc.includes(stale), `docs/protocol.md still says ${stale}`);
});
