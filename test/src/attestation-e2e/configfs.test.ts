// The agent's configfs-tsm quote provider against a temporary directory with a fake "kernel" (FakeTsm: it fills
// outblob with a quote from the test root of trust for the report_data written to inblob), the provider choice
// (TDX when EE_TSM_PATH exists; sandbox only on sandbox-1; a sealed network without TDX refuses to start), and a
// real in-process Agent attesting over the tunnel with configfs quotes and becoming routable on forge-1.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import {
  computeReportData,
  REPORT_DATA_DOMAINS,
  ConfigfsQuoteProvider,
  generateKeyset,
  newNonce,
  parseTdxQuote,
  publicKeyset,
  SandboxQuoteProvider,
} from '@easyenclave/attestation';
import { Agent, loadAgentConfig, NoTdxError, selectQuoteProvider } from '@easyenclave/agent';
import {
  agentEnv,
  closeAll,
  spawnAgent,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  waitRoutable,
  wsUrl,
} from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { proxyGet } from '../lifecycle/util.js';
import { buildQuote, FakeTsm, GOOD, memoryLogger, trustFiles } from './fixture.js';

afterEach(() => closeAll());

const reportData = () => computeReportData(REPORT_DATA_DOMAINS.tunnel, newNonce(), publicKeyset(generateKeyset()));

describe('configfs-tsm quote provider', () => {
  test('mkdir an entry, write inblob, read outblob, remove the entry', async () => {
    const t = await trustFiles();
    const kernel = new FakeTsm(t.rot, { quote: buildQuote(GOOD) });
    const p = new ConfigfsQuoteProvider({ path: kernel.path, timeout_ms: 5000 });
    assert.equal(p.evidence_type, 'tdx');
    for (let i = 0; i < 3; i++) {
      const rd = reportData();
      const quote = await p.getQuote(rd);
      const parsed = parseTdxQuote(quote);
      assert.ok(parsed.td.report_data.equals(rd));
      assert.equal(p.measurements.mrtd, GOOD.mrtd.toString('hex'));
    }
    assert.equal(p.entries_created, 3);
    assert.equal(kernel.seen.size, 3, 'a fresh entry per quote');
    assert.deepEqual(kernel.entries(), [], 'entries are removed after use');
    await assert.rejects(p.getQuote(Buffer.alloc(63)), /64 bytes/);
  });

  test('another writer in between (outblob for other report_data): retried once with a fresh entry, then an error', async () => {
    const t = await trustFiles();
    const once = new FakeTsm(t.rot, { race: 1 });
    const p = new ConfigfsQuoteProvider({ path: once.path, timeout_ms: 5000 });
    const rd = reportData();
    assert.ok(parseTdxQuote(await p.getQuote(rd)).td.report_data.equals(rd));
    assert.equal(p.entries_created, 2);

    const always = new FakeTsm(t.rot, { race: 1000 });
    const q = new ConfigfsQuoteProvider({ path: always.path, timeout_ms: 5000 });
    await assert.rejects(q.getQuote(reportData()), /REPORTDATA is not the report_data we wrote \(twice; giving up\)/);
    assert.equal(q.entries_created, 2);
    assert.deepEqual(always.entries(), []);
  });

  test('a provider other than tdx_guest, a missing directory, or no quote in time are errors', async () => {
    const t = await trustFiles();
    const sev = new FakeTsm(t.rot, { provider: 'sev_guest' });
    // The fake writes `provider` a moment after the entry appears (a real kernel has it at once); the provider
    // reads it again once the report is there, so the refusal does not depend on that moment.
    const p = new ConfigfsQuoteProvider({ path: sev.path, timeout_ms: 5000 });
    await assert.rejects(p.getQuote(reportData()), /provider is "sev_guest", not "tdx_guest"/);

    await assert.rejects(
      new ConfigfsQuoteProvider({ path: join(tmpDir(), 'absent') }).getQuote(reportData()),
      /cannot create a report entry/,
    );
    const silent = join(tmpDir(), 'report');
    mkdirSync(silent);
    await assert.rejects(
      new ConfigfsQuoteProvider({ path: silent, timeout_ms: 100 }).getQuote(reportData()),
      /no quote in outblob within 100 ms/,
    );
  });

  test('provider choice: configfs when EE_TSM_PATH exists; sandbox only on sandbox-1; sealed without TDX refuses', async () => {
    const tsm = join(tmpDir(), 'report');
    mkdirSync(tsm);
    const absent = join(tmpDir(), 'no-tsm');
    const logs = memoryLogger('info');
    const choose = (network: string, tsm_path: string) =>
      selectQuoteProvider({ repo: 'acme/demo', release_tag: 'v1.0.0', network, tsm_path }, logs.logger);
    assert.ok(choose('forge-1', tsm) instanceof ConfigfsQuoteProvider);
    assert.ok(choose('sandbox-1', tsm) instanceof ConfigfsQuoteProvider);
    assert.ok(choose('sandbox-1', absent) instanceof SandboxQuoteProvider);
    assert.ok(
      logs.lines().some((l) => l.level === 40 && /no TDX on this machine/.test(String(l.msg))),
      logs.text(),
    );
    assert.throws(() => choose('forge-1', absent), NoTdxError);
    assert.throws(() => choose('mystery-net', absent), NoTdxError, 'unknown networks count as sealed');
    assert.ok(
      logs.lines().some((l) => l.level === 50 && /network "forge-1" is sealed/.test(String(l.msg))),
      logs.text(),
    );
    // The Agent itself: constructing one fails the same way, before anything is dialled.
    const config = loadAgentConfig(
      agentEnv({
        control_ws: 'ws://127.0.0.1:9/v1/tunnel',
        backend_url: 'http://127.0.0.1:9',
        network: 'forge-1',
        extra: { EE_TSM_PATH: absent },
      }),
    );
    assert.equal(config.tsm_path, absent);
    assert.throws(() => new Agent(config, { logger: logs.logger }), NoTdxError);
  });

  test('`ee agent` on forge-1 without TDX logs an error and exits non-zero at start; EE_TSM_PATH must be absolute', async () => {
    const h = spawnAgent({
      control_ws: 'ws://127.0.0.1:9/v1/tunnel',
      backend_url: 'http://127.0.0.1:9',
      network: 'forge-1',
      extra: { EE_TSM_PATH: join(tmpDir(), 'none') },
    });
    const code = await h.exited;
    assert.equal(code, 1, h.output());
    assert.match(h.output(), /no TDX on this machine/);
    assert.match(h.output(), /refusing to start/);
    const bad = spawnAgent({
      control_ws: 'ws://127.0.0.1:9/v1/tunnel',
      backend_url: 'http://127.0.0.1:9',
      extra: { EE_TSM_PATH: 'tsm' },
    });
    assert.equal(await bad.exited, 2, bad.output());
    assert.match(bad.output(), /EE_TSM_PATH must be an absolute path/);
  });

  test('a real agent quoting through configfs-tsm attests over the tunnel and is routable on forge-1', async () => {
    const t = await trustFiles();
    const kernel = new FakeTsm(t.rot, { quote: buildQuote(GOOD) });
    const backend = await startBackend();
    const cp = await startCp(t.env);
    const agent = startAgent({
      control_ws: wsUrl(cp),
      backend_url: backend.url,
      network: 'forge-1',
      extra: { EE_TSM_PATH: kernel.path },
    });
    await waitRoutable(cp, 'demo', 10_000);
    await waitFor(() => agent.attested, 5000, 'the agent to hear attest_result ok');
    const res = await proxyGet(cp, '/echo');
    assert.equal(res.status, 200);
    const [row] = await cp.store.listAttestations({ app_name: 'demo', limit: 1 });
    assert.equal(row?.evidence_type, 'tdx');
    assert.equal(row?.policy_version, 'e2e-1');
    assert.ok(kernel.quotes >= 1);
    assert.deepEqual(kernel.entries(), []);
  });
});
