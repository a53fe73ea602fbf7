import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  MAX_CONTROL_MESSAGE_BYTES,
  parseAgentMessage,
  parseControlMessage,
  type ParseResult,
} from '@easyenclave/protocol';

const UUID = '3f2b8c1e-9a4d-4b7e-8c2f-1d6e5a9b0c3d';
const NONCE = 'a'.repeat(24) + randomBytes(20).toString('hex');
const register = {
  type: 'register',
  repo: 'org/repo',
  release_tag: 'v0.1.3',
  app_name: 'myapp',
  network: 'forge-1',
  agent_id: UUID,
};
const attestRequest = { type: 'attest_request', nonce: NONCE, deadline_s: 30, reason: 'register' };
const attestResponse = {
  type: 'attest_response',
  nonce: NONCE,
  quote: randomBytes(4999).toString('base64'),
  report_data: randomBytes(64).toString('hex'),
  measurements: { mrtd: 'ab'.repeat(48), rtmr0: 'cd'.repeat(48) },
};

function ok<T>(r: ParseResult<T>): T {
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.message;
}
function fails(r: ParseResult<unknown>, field: string | RegExp): void {
  assert.equal(r.ok, false, 'expected the message to be rejected');
  if (!r.ok) assert.match(r.error, typeof field === 'string' ? new RegExp(`\\b${field}\\b`) : field);
}
const text = (o: unknown): string => JSON.stringify(o);

describe('control messages: the seed examples', () => {
  it('register with a uuid agent_id', () => {
    const raw = `{"type":"register","repo":"org/repo","release_tag":"v0.1.3","app_name":"myapp","network":"forge-1","agent_id":"${randomUUID()}"}`;
    assert.deepEqual(ok(parseAgentMessage(raw)), JSON.parse(raw));
    assert.deepEqual(ok(parseAgentMessage(text({ ...register, agent_version: '0.1.0' }))), {
      ...register,
      agent_version: '0.1.0',
    });
  });
  it('attest_request, for every reason', () => {
    for (const reason of ['register', 'interval', 'policy', 'client']) {
      assert.deepEqual(ok(parseControlMessage(text({ ...attestRequest, reason }))), { ...attestRequest, reason });
    }
  });
  it('attest_response with a base64 quote and 128-hex report_data (with and without keyset)', () => {
    assert.equal(attestResponse.report_data.length, 128);
    assert.deepEqual(ok(parseAgentMessage(text(attestResponse))), attestResponse);
    const keyset = {
      hpke_public_key: randomBytes(32).toString('hex'),
      receipt_public_key: randomBytes(32).toString('hex'),
    };
    assert.deepEqual(ok(parseAgentMessage(text({ ...attestResponse, keyset }))), { ...attestResponse, keyset });
    for (const pad of ['', '=', '=='])
      ok(parseAgentMessage(text({ ...attestResponse, quote: 'QUJD' + 'QQ'.slice(0, 2 - pad.length) + pad })));
    const pop_signature = randomBytes(64).toString('hex');
    assert.deepEqual(ok(parseAgentMessage(text({ ...attestResponse, keyset, pop_signature }))), {
      ...attestResponse,
      keyset,
      pop_signature,
    });
  });
  it('a maximal quote still fits in one control message', () => {
    const quote = 'A'.repeat(40_000);
    assert.ok(text({ ...attestResponse, quote }).length <= MAX_CONTROL_MESSAGE_BYTES);
    ok(parseAgentMessage(text({ ...attestResponse, quote })));
    fails(parseAgentMessage(text({ ...attestResponse, quote: quote + 'A' })), 'quote');
  });
  it('health pass and fail', () => {
    assert.deepEqual(ok(parseAgentMessage('{"type":"health","status":"pass"}')), { type: 'health', status: 'pass' });
    assert.deepEqual(
      ok(parseAgentMessage('{"type":"health","status":"fail","detail":"backend unreachable: ECONNREFUSED"}')),
      { type: 'health', status: 'fail', detail: 'backend unreachable: ECONNREFUSED' },
    );
  });
  it('our control-to-agent messages', () => {
    const registered = {
      type: 'registered',
      app_name: 'myapp',
      agent_id: UUID,
      expires_at: '2026-01-01T00:00:00Z',
      status: 'active',
      session_id: randomBytes(32).toString('hex'),
    };
    assert.deepEqual(ok(parseControlMessage(text(registered))), registered);
    // The session id is required, and exactly 32 bytes of lowercase hex.
    fails(parseControlMessage(text({ ...registered, session_id: undefined })), 'session_id');
    fails(parseControlMessage(text({ ...registered, session_id: 'AB'.repeat(32) })), 'session_id');
    fails(parseControlMessage(text({ ...registered, session_id: 'ab'.repeat(31) })), 'session_id');
    ok(
      parseControlMessage(text({ type: 'attest_result', nonce: NONCE, ok: false, reasons: ['measurement mismatch'] })),
    );
    ok(parseControlMessage(text({ type: 'error', code: 'bad_request', message: 'nope' })));
  });
});

describe('control messages: rejection', () => {
  it('unknown fields are rejected, naming the field', () => {
    fails(parseAgentMessage(text({ ...register, extra: 1 })), 'extra');
    fails(parseAgentMessage(text({ ...attestResponse, report: 'x' })), 'report');
    fails(parseAgentMessage(text({ type: 'health', status: 'pass', Status: 'fail' })), 'Status');
    fails(parseControlMessage(text({ ...attestRequest, nonse: NONCE })), 'nonse');
    fails(
      parseAgentMessage(
        text({
          ...attestResponse,
          keyset: { hpke_public_key: 'ab'.repeat(32), receipt_public_key: 'cd'.repeat(32), x: 1 },
        }),
      ),
      /keyset.*x/,
    );
  });
  it('bad values are rejected, naming the field', () => {
    const cases: Array<[object, string]> = [
      [{ ...register, repo: 'no-slash' }, 'repo'],
      [{ ...register, repo: 'a/b/c' }, 'repo'],
      [{ ...register, app_name: 'MyApp' }, 'app_name'],
      [{ ...register, app_name: '-app' }, 'app_name'],
      [{ ...register, app_name: 'a'.repeat(64) }, 'app_name'],
      [{ ...register, release_tag: 'v 1' }, 'release_tag'],
      [{ ...register, release_tag: '' }, 'release_tag'],
      [{ ...register, network: '' }, 'network'],
      [{ ...register, agent_id: 'short' }, 'agent_id'],
      [{ ...register, agent_id: 'has space in it' }, 'agent_id'],
      [{ ...register, agent_id: undefined }, 'agent_id'],
      [{ ...attestResponse, quote: 'not base64!' }, 'quote'],
      [{ ...attestResponse, quote: '' }, 'quote'],
      [{ ...attestResponse, report_data: 'ab'.repeat(63) }, 'report_data'],
      [{ ...attestResponse, report_data: 'AB'.repeat(64) }, 'report_data'],
      [{ ...attestResponse, nonce: 'g'.repeat(64) }, 'nonce'],
      [{ ...attestResponse, measurements: { mrtd: 1 } }, 'measurements'],
      [{ ...attestResponse, pop_signature: 'ab'.repeat(63) }, 'pop_signature'],
      [{ ...attestResponse, pop_signature: 'AB'.repeat(64) }, 'pop_signature'],
      [{ type: 'health', status: 'ok' }, 'status'],
      [{ type: 'health', status: 'fail', detail: 'x'.repeat(513) }, 'detail'],
      [{ ...register, type: 'attest_request' }, 'type'],
      [{ type: 'hello' }, 'type'],
    ];
    for (const [msg, field] of cases) fails(parseAgentMessage(text(msg)), field);
    fails(parseControlMessage(text({ ...attestRequest, deadline_s: 0 })), 'deadline_s');
    fails(parseControlMessage(text({ ...attestRequest, deadline_s: 1.5 })), 'deadline_s');
    fails(parseControlMessage(text({ ...attestRequest, reason: 'whim' })), 'reason');
    // Direction matters: an agent may not send control-plane messages and vice versa.
    fails(parseAgentMessage(text(attestRequest)), 'type');
    fails(parseControlMessage(text(register)), 'type');
  });
  it('non-JSON and non-objects are rejected', () => {
    fails(parseAgentMessage('{"type":"health",'), /not valid JSON/);
    for (const t of ['null', '[]', '5', '"register"']) fails(parseAgentMessage(t), /invalid control message/);
  });
  it('oversize text is rejected before parsing', () => {
    const big = text({ type: 'health', status: 'fail', detail: 'x'.repeat(MAX_CONTROL_MESSAGE_BYTES) });
    fails(parseAgentMessage(big), /exceeds/);
    fails(parseControlMessage(' '.repeat(MAX_CONTROL_MESSAGE_BYTES + 1)), /exceeds/);
    // The bound is checked on the raw text, so even padding whitespace counts.
    fails(parseAgentMessage(text(register) + ' '.repeat(MAX_CONTROL_MESSAGE_BYTES)), /exceeds/);
  });
  it('fuzz: the parsers never throw, on arbitrary text or on mutated valid messages', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        assert.equal(typeof parseAgentMessage(s).ok, 'boolean');
        assert.equal(typeof parseControlMessage(s).ok, 'boolean');
      }),
      { numRuns: 1000 },
    );
    const base = fc.constantFrom<Record<string, unknown>>(register, attestRequest, attestResponse, {
      type: 'health',
      status: 'pass',
    });
    const patch = fc.dictionary(
      fc.constantFrom('type', 'repo', 'nonce', 'quote', 'status', 'measurements', 'keyset', 'x'),
      fc.jsonValue({ maxDepth: 2 }),
      { maxKeys: 3 },
    );
    fc.assert(
      fc.property(base, patch, (b, p) => {
        const r1 = parseAgentMessage(text({ ...b, ...p }));
        const r2 = parseControlMessage(text({ ...b, ...p }));
        if (!r1.ok) assert.match(r1.error, /^invalid control message: /);
        if (!r2.ok) assert.match(r2.error, /^invalid control message: /);
      }),
      { numRuns: 1000 },
    );
  });
});
