// A malicious agent that never returns flow-control credit keeps whatever the control plane queued toward it.
// Without a cap shared by all tunnels, 256 streams × 256 KiB per such agent (and as much again per further
// agent) stayed queued. With EE_MAX_BUFFERED_STREAM_BYTES the queued request bodies over all agents stay
// within the cap (plus at most a chunk or two per stream already handed over), while a genuine agent's
// upload still goes through. Real sockets: a hand-driven agent that reads frames and never credits them.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterEach, describe, test } from 'node:test';
import { FrameType, INITIAL_STREAM_WINDOW_BYTES, KiB, MiB } from '@easyenclave/protocol';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import {
  closeAll,
  patternChunk,
  sleep,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  waitRoutable,
  wsUrl,
} from '../helpers/network.js';
import { RawAgent } from '../lifecycle/raw-agent.js';

afterEach(() => closeAll());

const CAP_BYTES = 256 * KiB;
const STREAMS = 16;
const BODY_BYTES = 2 * MiB; // 1 MiB fills the stream window, the rest is offered to the queue
/** What a stream may have queued past the cap: the chunks the producer handed over before it paused. */
const SLACK_PER_STREAM_BYTES = 128 * KiB;

/** Body bytes queued toward agents, summed over every stream of every link (main has no budget to read). */
function queued(cp: ControlPlane): number {
  let n = 0;
  for (const l of cp.hub.links) for (const s of l.session.streams.values()) n += s.queuedBytes;
  return n;
}

/** POST `bytes` bytes to `path` through the path proxy; resolves with the answer (never, if it stalls). */
function upload(cp: ControlPlane, app: string, path: string, bytes: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${cp.api_url}/v1/proxy/${app}${path}`,
      { method: 'POST', agent: false, headers: { 'content-length': String(bytes) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    const chunk_bytes = 64 * KiB;
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        const n = Math.min(chunk_bytes, bytes - sent);
        const ok = req.write(patternChunk(sent, n));
        sent += n;
        if (!ok) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('buffered stream bytes across agents', () => {
  test('an agent that never credits holds at most the shared cap; a genuine upload still completes', async () => {
    const cp = await startCp({ EE_MAX_BUFFERED_STREAM_BYTES: String(CAP_BYTES), EE_PROXY_TIMEOUT_SEC: '120' });
    const backend = await startBackend();
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp);
    const evil = await RawAgent.connect(wsUrl(cp), { app_name: 'evil', repo: 'evil/evil' });
    await evil.registerAndAttest(); // never serves: frames are read and never credited
    await waitRoutable(cp, 'evil');

    const stalled = Array.from({ length: STREAMS }, (_, i) =>
      upload(cp, 'evil', `/up-${i}`, BODY_BYTES).catch(() => null),
    );
    void stalled;
    const dataBytes = () =>
      evil.frames.reduce((n, f) => n + (f !== null && f.type === FrameType.DATA ? f.data.length : 0), 0);
    await waitFor(() => dataBytes() >= STREAMS * INITIAL_STREAM_WINDOW_BYTES, 20_000, 'every stream window to fill');
    await waitFor(() => queued(cp) >= CAP_BYTES, 20_000, 'bodies to queue behind the exhausted windows');
    // The queue stays within the cap however long the agent stalls.
    const bound = CAP_BYTES + STREAMS * SLACK_PER_STREAM_BYTES;
    for (let i = 0; i < 20; i++) {
      assert.ok(queued(cp) <= bound, `${queued(cp)} bytes queued toward a stalled agent (cap ${CAP_BYTES})`);
      await sleep(50);
    }

    // A genuine agent's upload goes through while the budget is spent (one chunk at a time).
    const body_bytes = 4 * MiB;
    const r = await upload(cp, 'demo', '/sink', body_bytes);
    assert.equal(r.status, 200, r.text);
    const expected = createHash('sha256').update(patternChunk(0, body_bytes)).digest('hex');
    assert.deepEqual(JSON.parse(r.text), { body_bytes, sha256: expected });

    // The stalled agent goes away: everything queued toward it is released.
    evil.terminate();
    await waitFor(() => queued(cp) === 0, 10_000, 'the queues to be released');
    const budget = (cp.hub as unknown as { budget?: { used_bytes: number } }).budget;
    assert.equal(budget?.used_bytes, 0, 'the shared budget returns to zero');
  });
});
