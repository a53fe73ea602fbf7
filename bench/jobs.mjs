#!/usr/bin/env node
// Job start latency: time from asking for a container to its first instruction, for `podman run` of the test
// image by hand (the reference) and for the launcher's runtime (`PodmanRuntime.start`: image resolution,
// env file, `podman run --detach`, inspect). The container's first instruction is busybox `adjtimex`, which
// prints the kernel's clock (µs); the host clock is the same clock. Then the jobs API (bench/jobs-api.mjs):
// POST /v1/jobs through a control plane and a node launcher to the same first instruction, in the same run, and
// N short jobs from N concurrent clients until every lock is settled.
// Standalone: `node bench/jobs.mjs [--runs N] [--jobs N] [--json]` (after `npx tsc -b`); podman settings from
// EE_CONTAINER_* or, when unset, the test defaults (TEST_PODMAN_ENV).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PodmanCli, PodmanRuntime, loadLauncherConfig } from '@easyenclave/launcher';
import { TEST_PODMAN_ENV, ensureTestImage } from '@easyenclave/launcher/testing/test-image';
import { pino } from 'pino';
import { benchJobsApi } from './jobs-api.mjs';

const argv = process.argv.slice(2);
const RUNS = argv.includes('--runs') ? Number(argv[argv.indexOf('--runs') + 1]) : 10;
const JSON_OUT = argv.includes('--json');
const MANY = argv.includes('--jobs') ? Number(argv[argv.indexOf('--jobs') + 1]) : 100;
if (!Number.isInteger(MANY) || MANY < 1 || MANY > 1000) throw new Error('--jobs must be an integer from 1 to 1000');
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 1000) throw new Error('--runs must be an integer from 1 to 1000');

const env = {
  EE_CONTAINER_RUNTIME: process.env.EE_CONTAINER_RUNTIME ?? TEST_PODMAN_ENV.EE_CONTAINER_RUNTIME,
  EE_CONTAINER_GLOBAL_ARGS: process.env.EE_CONTAINER_GLOBAL_ARGS ?? TEST_PODMAN_ENV.EE_CONTAINER_GLOBAL_ARGS,
  EE_CONTAINER_RUN_ARGS: process.env.EE_CONTAINER_RUN_ARGS ?? TEST_PODMAN_ENV.EE_CONTAINER_RUN_ARGS,
};
const state_dir = mkdtempSync(join(tmpdir(), 'ee-bench-jobs-'));
const config = loadLauncherConfig({
  ...env,
  EE_LAUNCHER_STATE_DIR: state_dir,
  EE_LAUNCHER_ID: `bench-${process.pid}-${Date.now()}`,
});
const cli = new PodmanCli({ command: config.container_runtime, global_args: config.container_global_args });

/** ms since the epoch, with µs resolution (the same clock adjtimex reads inside the container). */
const nowMs = () => performance.timeOrigin + performance.now();

/** adjtimex's "time.tv_sec" / "time.tv_usec" lines → ms since the epoch. */
function adjtimexMs(text) {
  const sec = /time\.tv_sec:\s+(\d+)/.exec(text)?.[1];
  const usec = /time\.tv_usec:\s+(\d+)/.exec(text)?.[1];
  if (sec === undefined || usec === undefined) throw new Error(`no adjtimex time in: ${text.slice(0, 200)}`);
  return Number(sec) * 1000 + Number(usec) / 1000;
}

/** `podman run` by hand, the way an operator would type it (same isolation flags as a job). */
function byHand(image) {
  const args = cli.argv([
    'run',
    '--rm',
    '--pull=never',
    '--network=none',
    '--cap-drop=all',
    '--security-opt=no-new-privileges',
    '--cpus=1',
    '--memory=64m',
    ...config.container_run_args,
    image,
    '/usr/bin/adjtimex',
  ]);
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const child = spawn(config.container_runtime, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const t_exit = nowMs();
      if (code !== 0) return reject(new Error(`podman run exited ${code}: ${err}`));
      resolve({ first_ms: adjtimexMs(out) - t0, total_ms: t_exit - t0 });
    });
  });
}

async function throughRuntime(rt, image, i) {
  const t0 = nowMs();
  const w = await rt.start({
    workload_id: `bench-${process.pid}-${i}`,
    kind: 'job',
    assignment_seq: i,
    image,
    command: ['/usr/bin/adjtimex'],
    vcpus: 1,
    memory_mib: 64,
    max_runtime_ms: 60_000,
  });
  const t_started = nowMs();
  const r = await w.result();
  const t_result = nowMs();
  await w.remove();
  if (r.state !== 'succeeded') throw new Error(`job ${r.state}: ${r.reason}`);
  return {
    first_ms: adjtimexMs(r.stdout_tail.toString()) - t0,
    start_ms: t_started - t0,
    result_ms: t_result - t0,
  };
}

const pctl = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const summary = (rows, key) => ({
  median: pctl(
    rows.map((r) => r[key]),
    0.5,
  ),
  p90: pctl(
    rows.map((r) => r[key]),
    0.9,
  ),
});

const log = (m) => !JSON_OUT && console.error(m);
const image = await ensureTestImage(cli);
log(`image ${image}; ${RUNS} runs each; podman ${config.container_global_args.join(' ')}`);
await byHand(image); // warm-up: page cache, storage locks
const hand = [];
for (let i = 0; i < RUNS; i++) hand.push(await byHand(image));
const rt = await PodmanRuntime.open(config, { logger: pino({ level: 'warn' }) });
const ours = [];
try {
  for (let i = 0; i < RUNS; i++) ours.push(await throughRuntime(rt, image, i));
} finally {
  await rt.close();
}
let api;
try {
  api = await benchJobsApi({ dir: state_dir, env, image, runs: RUNS, concurrent: MANY, nowMs, adjtimexMs });
} finally {
  rmSync(state_dir, { recursive: true, force: true });
}
const result = {
  runs: RUNS,
  image,
  by_hand: { first_instruction_ms: summary(hand, 'first_ms'), exit_ms: summary(hand, 'total_ms') },
  runtime: {
    first_instruction_ms: summary(ours, 'first_ms'),
    start_returned_ms: summary(ours, 'start_ms'),
    result_ms: summary(ours, 'result_ms'),
  },
  api: { first_instruction_ms: summary(api.first, 'first_ms'), many: api.many },
};
const goal_ms = 1.5 * result.by_hand.first_instruction_ms.median + 200;
result.api.goal_ms = goal_ms;
result.api.goal_met = result.api.first_instruction_ms.median <= goal_ms;
if (JSON_OUT) console.log(JSON.stringify(result));
else {
  const f = (s) => `median ${s.median.toFixed(0)} ms, p90 ${s.p90.toFixed(0)} ms`;
  console.log(`podman run by hand:  first instruction ${f(result.by_hand.first_instruction_ms)}`);
  console.log(`                     exit (podman returns) ${f(result.by_hand.exit_ms)}`);
  console.log(`runtime.start():     first instruction ${f(result.runtime.first_instruction_ms)}`);
  console.log(`                     start() returned ${f(result.runtime.start_returned_ms)}`);
  console.log(`                     result collected ${f(result.runtime.result_ms)}`);
  console.log(
    `POST /v1/jobs:       first instruction ${f(result.api.first_instruction_ms)} (goal ≤ ${goal_ms.toFixed(0)} ms)`,
  );
  const m = result.api.many;
  console.log(
    `${m.jobs} short jobs at once: ${m.succeeded} succeeded, ${m.locks_resolved} locks resolved (locked = settled + refunded: ${m.locked_equals_settled_plus_refunded}) in ${(m.wall_ms / 1000).toFixed(1)} s`,
  );
  for (const why of new Set(m.not_succeeded)) console.log(`  not succeeded: ${why}`);
}
