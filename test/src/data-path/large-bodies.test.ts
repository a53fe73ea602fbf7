// Large bodies through a control plane running as its own process (so its memory can be read from /proc):
// 100 MiB each way in bounded memory, and a slow reader that must not stall the other streams of its agent.

import { after, afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { request } from 'undici';
import {
  closeAll,
  memoryKiB,
  patternChunk,
  spawnAgent,
  spawnCp,
  SPAWN_READY_TIMEOUT_MS,
  startBackend,
  waitFor,
  waitRoutable,
  type CpProcess,
} from '../helpers/network.js';
import { deadline, entries, resetPeakRss, type Entry } from './util.js';

after(closeAll);

const MiB = 1024 * 1024;
const BIG = 100 * MiB;
const MEMORY_BOUND_KiB = 64 * 1024;

let cp: CpProcess;

/** A fresh control-plane subprocess with one agent subprocess and a backend, warmed up in both directions so
 *  lazily allocated pools and compiled code do not count as growth. Each memory measurement gets its own, so
 *  one test's freed-but-kept heap cannot hide the next one's growth. */
async function freshNetwork(): Promise<void> {
  const backend = await startBackend();
  cp = await spawnCp();
  spawnAgent({ control_ws: cp.ws_url, backend_url: backend.url, agent_id: `agent-large-${cp.pid}` });
  await waitRoutable(cp, 'demo', SPAWN_READY_TIMEOUT_MS);
  await downloadVerified(entry('host'), 4 * MiB);
  await uploadVerified(entry('api-path'), 4 * MiB);
}

const entry = (name: Entry['name']) => entries(cp).find((e) => e.name === name)!;
const hostHeader = (e: Entry) => (e.host ? { host: e.host } : {});

/** Streams a download and checks every byte against the backend's pattern; never holds more than a chunk. */
async function downloadVerified(e: Entry, n: number): Promise<number> {
  const res = await request(`${e.base}${e.prefix}/bytes/${n}`, { headers: hostHeader(e) });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-length'], String(n));
  let offset = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    if (!chunk.equals(patternChunk(offset, chunk.length)))
      assert.fail(`byte mismatch in the chunk at offset ${offset}`);
    offset += chunk.length;
  }
  return offset;
}

/** Streams an upload of n pattern bytes from a generator; returns the backend's count and sha256, and ours. */
async function uploadVerified(
  e: Entry,
  n: number,
): Promise<{ got: { body_bytes: number; sha256: string }; sent: string }> {
  const hash = createHash('sha256');
  async function* body() {
    const CHUNK = 64 * 1024;
    for (let off = 0; off < n; off += CHUNK) {
      const c = patternChunk(off, Math.min(CHUNK, n - off));
      hash.update(c);
      yield c;
    }
  }
  const res = await request(`${e.base}${e.prefix}/sink`, {
    method: 'POST',
    headers: { ...hostHeader(e), 'content-type': 'application/octet-stream', 'content-length': String(n) },
    body: Readable.from(body(), { objectMode: false }),
  });
  const text = await res.body.text();
  assert.equal(res.statusCode, 200, text);
  return { got: JSON.parse(text), sent: hash.digest('hex') };
}

/** Runs fn and returns the control plane's RSS growth over it: peak RSS during fn minus RSS before (KiB). */
async function cpGrowthKiB(
  t: { diagnostic(m: string): void },
  fn: () => Promise<void>,
): Promise<{ before: number; peak: number; growth: number }> {
  const before = memoryKiB(cp.pid).rss;
  resetPeakRss(cp.pid);
  const t0 = Date.now();
  await fn();
  const peak = memoryKiB(cp.pid).hwm;
  t.diagnostic(
    `control plane RSS ${(before / 1024).toFixed(1)} MiB → peak ${(peak / 1024).toFixed(1)} MiB (growth ${((peak - before) / 1024).toFixed(1)} MiB) in ${Date.now() - t0} ms`,
  );
  return { before, peak, growth: peak - before };
}

describe('large bodies through a control-plane subprocess', () => {
  beforeEach(freshNetwork);
  afterEach(closeAll);

  it('100 MiB download: every byte arrives, control-plane RSS grows < 64 MiB', async (t) => {
    let n = 0;
    const m = await cpGrowthKiB(t, async () => {
      n = await downloadVerified(entry('host'), BIG);
    });
    assert.equal(n, BIG);
    assert.ok(
      m.growth < MEMORY_BOUND_KiB,
      `control plane grew ${(m.growth / 1024).toFixed(1)} MiB (RSS ${m.before} KiB → peak ${m.peak} KiB) for a 100 MiB download`,
    );
  });

  it('100 MiB upload (streamed from a generator): sha256 matches, control-plane RSS grows < 64 MiB', async (t) => {
    let r!: Awaited<ReturnType<typeof uploadVerified>>;
    const m = await cpGrowthKiB(t, async () => {
      r = await uploadVerified(entry('api-path'), BIG);
    });
    assert.equal(r.got.body_bytes, BIG);
    assert.equal(r.got.sha256, r.sent);
    assert.ok(
      m.growth < MEMORY_BOUND_KiB,
      `control plane grew ${(m.growth / 1024).toFixed(1)} MiB (RSS ${m.before} KiB → peak ${m.peak} KiB) for a 100 MiB upload`,
    );
  });

  it('a slow reader does not stall other streams on the same agent, and finishes intact when it resumes', async (t) => {
    const e = entry('api-path');
    let received = 0;
    let bad: string | null = null;
    let res!: http.IncomingMessage;
    let ended!: Promise<void>;
    let done = false;

    const m = await cpGrowthKiB(t, async () => {
      // 1. Start the 100 MiB download, read the first MiB, then stop reading.
      res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const u = new URL(e.base);
        const req = http.request(
          { host: u.hostname, port: u.port, path: `${e.prefix}/bytes/${BIG}`, agent: false },
          resolve,
        );
        req.on('error', reject);
        req.end();
      });
      assert.equal(res.statusCode, 200);
      ended = new Promise<void>((resolve, reject) => {
        res.on('end', () => {
          done = true;
          resolve();
        });
        res.on('error', reject);
        res.on('aborted', () => reject(new Error(`slow download aborted after ${received} bytes`)));
      });
      let paused_once = false;
      const onData = (c: Buffer) => {
        if (bad === null && !c.equals(patternChunk(received, c.length)))
          bad = `byte mismatch in the chunk at offset ${received}`;
        received += c.length;
        if (!paused_once && received >= MiB) {
          paused_once = true;
          res.pause();
        }
      };
      res.on('data', onData);
      await waitFor(() => res.isPaused(), 10_000, 'the slow reader to read its first MiB');

      // 2. Wait until the stall reaches the sockets: nothing more is read from the client socket.
      let last = -1;
      await waitFor(
        async () => {
          const now = res.socket!.bytesRead;
          const stable = now === last;
          last = now;
          await new Promise((r) => setTimeout(r, 150));
          return stable;
        },
        10_000,
        'the slow download to stall',
      );

      // 3. While it is stalled: 50 small GETs and a 10 MiB download on the same agent complete.
      const others = (async () => {
        const small = Promise.all(
          Array.from({ length: 50 }, async (_, i) => {
            const x = entries(cp)[i % 2]!;
            const r = await request(`${x.base}${x.prefix}/echo/small?i=${i}`, { headers: hostHeader(x) });
            const body = (await r.body.json()) as { url: string };
            assert.equal(r.statusCode, 200);
            assert.equal(body.url, `/echo/small?i=${i}`);
          }),
        );
        const ten = downloadVerified(entry('host'), 10 * MiB);
        await small;
        assert.equal(await ten, 10 * MiB);
      })();
      await deadline(others, 20_000, '50 small GETs and a 10 MiB download behind a stalled 100 MiB download');
      assert.equal(done, false, 'the slow download must still be incomplete (stalled) while the others ran');
      assert.ok(received < BIG, `slow download received ${received} bytes while paused`);
    });
    assert.ok(
      m.growth < MEMORY_BOUND_KiB,
      `control plane grew ${(m.growth / 1024).toFixed(1)} MiB behind a stalled reader (RSS ${m.before} KiB → peak ${m.peak} KiB)`,
    );

    // 4. Resume: the slow download completes, byte-exact.
    res.resume();
    await deadline(ended, 60_000, 'the resumed 100 MiB download');
    assert.equal(bad, null, bad ?? '');
    assert.equal(received, BIG);
  });
});
