// N real agents in ONE process (the `Agent` class from packages/agent/dist), for the idle-memory and
// restart benchmarks: 1000 agent processes would not fit on the machine, 1000 agents in one process do.
//
//   node bench/many-agents.mjs '{"ws_url":"ws://127.0.0.1:P/v1/tunnel","backend_url":"http://127.0.0.1:B","count":1000}'
// Options: count, apps (distinct app names, default = count; agent i serves app `${app_prefix}-${i % apps}`),
// app_prefix ('idle'), health_interval_s (10), state_dir (EE_AGENT_STATE_DIR; default: a temp dir), start
// (how many agents to start at once, default count: agents 0 … start-1; SIGUSR2 starts the rest, so a fleet can
// grow in steps within one process).
// Prints JSON lines: {"ev":"status","t":epoch_ms,"connected":c,"attested":a} on changes (at most every 100 ms)
// and {"ev":"all_attested","t":epoch_ms,"started":n} each time the attested count reaches the number of started
// agents n. SIGTERM stops every agent.

import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

// The code under test: a snapshot of the build when the benchmark made one, else this checkout.
const ROOT = process.env.EE_BENCH_CODE_ROOT || join(dirname(fileURLToPath(import.meta.url)), '..');
const { Agent, loadAgentConfig } = await import(pathToFileURL(join(ROOT, 'packages/agent/dist/index.js')).href);
const { pino } = await import('pino');

const o = JSON.parse(process.argv[2]);
const count = o.count ?? 1000;
const apps = o.apps ?? count;
const prefix = o.app_prefix ?? 'idle';
// The parent passes a dir it removes itself (this process is usually ended with SIGKILL).
const state_dir = o.state_dir ?? mkdtempSync(join(tmpdir(), 'ee-bench-many-'));
const logger = pino({ level: 'silent' });

const agents = [];
const attested = new Uint8Array(count);
const connected = new Uint8Array(count);
let nAttested = 0;
let nConnected = 0;
let dirty = true;
let wasAll = false;
let started = Math.min(count, o.start ?? count);

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

for (let i = 0; i < count; i++) {
  const env = {
    EE_CONTROL_WS: o.ws_url,
    EE_REPO: 'acme/bench',
    EE_RELEASE_TAG: 'v1.0.0',
    EE_APP_NAME: `${prefix}-${i % apps}`,
    EE_NETWORK: 'sandbox-1',
    EE_BACKEND_URL: o.backend_url,
    EE_AGENT_ID: `bench-agent-${String(i).padStart(5, '0')}`,
    EE_AGENT_STATE_DIR: state_dir,
    EE_HEALTH_INTERVAL_SEC: String(o.health_interval_s ?? 10),
    EE_LOG_LEVEL: 'silent',
  };
  const a = new Agent(loadAgentConfig(env), { logger });
  a.on('connected', () => {
    if (!connected[i]) {
      connected[i] = 1;
      nConnected++;
      dirty = true;
    }
  });
  a.on('attested', () => {
    if (!attested[i]) {
      attested[i] = 1;
      nAttested++;
      dirty = true;
    }
    if (nAttested === started && !wasAll) {
      wasAll = true;
      emit({ ev: 'all_attested', t: Date.now(), started });
    }
  });
  a.on('disconnected', () => {
    if (connected[i]) {
      connected[i] = 0;
      nConnected--;
      dirty = true;
    }
    if (attested[i]) {
      attested[i] = 0;
      nAttested--;
      dirty = true;
    }
    wasAll = false;
  });
  agents.push(a);
}
emit({ ev: 'created', t: Date.now(), count });
for (let i = 0; i < started; i++) agents[i].start();
emit({ ev: 'started', t: Date.now(), count: started });
process.on('SIGUSR2', () => {
  if (started === count) return;
  const from = started;
  started = count;
  wasAll = false;
  for (let i = from; i < count; i++) agents[i].start();
  emit({ ev: 'started', t: Date.now(), count: started });
});

const ticker = setInterval(() => {
  if (!dirty) return;
  dirty = false;
  emit({
    ev: 'status',
    t: Date.now(),
    connected: nConnected,
    attested: nAttested,
    rss_kib: Math.round(process.memoryUsage.rss() / 1024),
  });
}, 100);

let stopping = false;
const stop = async () => {
  if (stopping) process.exit(1);
  stopping = true;
  clearInterval(ticker);
  await Promise.race([Promise.all(agents.map((a) => a.stop(0))), new Promise((r) => setTimeout(r, 3000))]);
  if (!o.state_dir) rmSync(state_dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
