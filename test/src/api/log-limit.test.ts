// Repeated log lines are bounded: the same error at most LOG_REPEAT_MAX times per interval, and the next line
// after the interval says how many were left out.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { controlPlaneLogger, LOG_REPEAT_MAX, RepeatLimiter } from '@easyenclave/control-plane/log';

test('RepeatLimiter admits LOG_REPEAT_MAX per key and interval, then reports what it suppressed', () => {
  let now = 0;
  const limiter = new RepeatLimiter(3, 1000, () => now);
  const admitted = Array.from({ length: 10 }, () => limiter.admit('a').write);
  assert.deepEqual(admitted, [true, true, true, false, false, false, false, false, false, false]);
  assert.deepEqual(limiter.admit('b'), { write: true, suppressed: 0 }, 'another error has its own budget');
  now = 1000;
  assert.deepEqual(limiter.admit('a'), { write: true, suppressed: 7 });
  assert.deepEqual(limiter.admit('a'), { write: true, suppressed: 0 });
});

test('the control plane logger writes a repeated error at most LOG_REPEAT_MAX times; info is never limited', () => {
  const lines: any[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });
  const log = controlPlaneLogger('info', sink);
  const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  for (let i = 0; i < 50; i++) log.error({ err }, 'store unavailable');
  for (let i = 0; i < 50; i++) log.info('tick');
  for (let i = 0; i < 3; i++)
    log.error({ err: Object.assign(new Error('disk full'), { code: 'SQLITE_FULL' }) }, 'store unavailable');
  assert.equal(lines.filter((l) => l.err?.code === 'ECONNREFUSED').length, LOG_REPEAT_MAX);
  assert.equal(lines.filter((l) => l.err?.code === 'SQLITE_FULL').length, 3);
  assert.equal(lines.filter((l) => l.msg === 'tick').length, 50);
});
