// The SDK verifying evidence itself, against a real control plane on the sealed network forge-1 whose agents
// quote through a fake configfs-tsm "kernel" signing with the test root of trust (the only stand-in: there is
// no TDX hardware here). A real agent with allowlisted measurements passes; an agent the control plane admits
// but the client's policy does not list is refused; a tampered or replayed quote is refused, and then nothing
// reaches the app. The control plane's own (sandbox) evidence verifies with a sandbox policy and not with a
// mismatched one. Evidence made for another purpose (report_data domain) than the one asked for is refused:
// an app's evidence must be a relayed answer (ee-relay-v1), the control plane's its own (ee-self-v1).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import {
  computeReportData,
  DCAP_REASONS,
  generateKeyset,
  POLICY_REASONS,
  publicKeyset,
  REPORT_DATA_DOMAINS,
  ROUTER_REASONS,
  SANDBOX_REASONS,
  SandboxQuoteProvider,
  sandboxMeasurements,
  type ReportDataDomain,
} from '@easyenclave/attestation';
import { AttestationError, EasyEnclave, type TrustOptions } from '@easyenclave/sdk';
import { closeAll, onCleanup, startAgent, startBackend, startCp, waitRoutable, wsUrl } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { RawAgent } from '../lifecycle/raw-agent.js';
import {
  attestTdx,
  buildQuote,
  FakeTsm,
  GOOD,
  OTHER,
  policyJson,
  tdxAnswer,
  trustFiles,
  type TrustFiles,
} from '../attestation-e2e/fixture.js';

afterEach(() => closeAll());

/** Client-side trust: the test root of trust and its collateral, offline. */
const clientTrust = (t: TrustFiles): Omit<TrustOptions, 'policy'> => ({
  collateral: t.collateral,
  root_ca: t.rot.root.der,
  allow_non_intel_root: true,
});

async function refused(p: Promise<unknown>): Promise<string[]> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof AttestationError, `expected AttestationError, got ${String(err)}`);
  assert.equal(err.kind, 'attestation');
  return err.reasons;
}

/** A control plane on forge-1 whose policy admits GOOD and OTHER builds; the client allows only GOOD. */
async function sealed() {
  const t = await trustFiles(policyJson('cp-1', [{ build: GOOD }, { build: OTHER }]));
  const cp = await startCp({ ...t.env, EE_QUEUE_TIMEOUT_MS: '200' });
  const backend = await startBackend();
  return { t, cp, backend };
}

function tdxAgent(s: Awaited<ReturnType<typeof sealed>>, build: typeof GOOD, app_name = 'demo') {
  const kernel = new FakeTsm(s.t.rot, { quote: buildQuote(build) });
  return startAgent({
    control_ws: wsUrl(s.cp),
    backend_url: s.backend.url,
    network: 'forge-1',
    app_name,
    extra: { EE_TSM_PATH: kernel.path },
  });
}

describe('SDK verification on a sealed network (test root of trust)', () => {
  test('a real agent with allowlisted measurements passes; verification is on by default; requests flow', async () => {
    const s = await sealed();
    const agent = tdxAgent(s, GOOD);
    await waitRoutable(s.cp);
    const ee = new EasyEnclave({ url: s.cp.api_url, policy: policyJson('client-1'), trust: clientTrust(s.t) });
    const app = await ee.connect('demo');
    assert.ok(app.verified);
    assert.equal(app.verified.evidence_type, 'tdx');
    assert.equal(app.verified.network, 'forge-1');
    assert.equal(app.verified.policy_version, 'client-1');
    assert.equal(app.verified.measurements.mrtd, GOOD.mrtd.toString('hex'));
    assert.deepEqual(app.verified.keyset, agent.keys.toJSON());
    assert.equal(app.verified.agent_id, agent.config.agent_id);
    assert.equal(((await (await app.get('/hello')).json()) as { url: string }).url, '/hello');
    // Re-verification uses a fresh nonce.
    const first = app.verified.nonce;
    const again = await app.verify();
    assert.notEqual(again.nonce, first);
    assert.equal(app.verified, again);
    // Without a policy, TDX evidence cannot be judged: refused, fail closed.
    const reasons = await refused(new EasyEnclave({ url: s.cp.api_url, trust: clientTrust(s.t) }).connect('demo'));
    assert.ok(
      reasons.some((r) => r.startsWith('no attestation policy given')),
      JSON.stringify(reasons),
    );
  });

  test('an agent the control plane admits but the client policy does not list is refused, and nothing is sent', async () => {
    const s = await sealed();
    tdxAgent(s, OTHER);
    await waitRoutable(s.cp);
    let sent = 0;
    const counting: typeof fetch = (input, init) => {
      if (String(input).includes('/v1/proxy/')) sent++;
      return fetch(input, init);
    };
    const ee = new EasyEnclave({
      url: s.cp.api_url,
      policy: policyJson('client-1'),
      trust: clientTrust(s.t),
      fetch: counting,
      network: 'forge-1',
    });
    const reasons = await refused(ee.connect('demo'));
    assert.ok(
      reasons.includes(POLICY_REASONS.unknownMrtd(OTHER.mrtd.toString('hex'), 'acme/demo', 'v1.0.0')),
      JSON.stringify(reasons),
    );
    assert.equal(sent, 0);
    // Pinning the release the evidence must be for is checked too.
    const pinned = await refused(
      ee.verifyApp('demo', {
        trust: { policy: policyJson('c', [{ build: OTHER }]), ...clientTrust(s.t), expect: { release_tag: 'v2.0.0' } },
      }),
    );
    assert.deepEqual(pinned, ['release_tag is "v1.0.0", expected "v2.0.0"']);
  });

  test('a tampered quote and a replayed quote are refused', async () => {
    const s = await sealed();
    const raw = await RawAgent.connect(wsUrl(s.cp), { network: 'forge-1' });
    raw.serve();
    const { response: own } = await attestTdx(raw, s.t.rot, GOOD);
    await waitRoutable(s.cp);
    const ee = new EasyEnclave({ url: s.cp.api_url, policy: policyJson('client-1'), trust: clientTrust(s.t) });

    // The agent answers the relayed challenge with a quote whose TD report was altered after signing.
    let pending = ee.connect('demo');
    let req = await raw.next('attest_request');
    assert.equal(req.reason, 'client');
    const good = tdxAnswer(raw, s.t.rot, req, GOOD);
    const bytes = Buffer.from(good.quote, 'base64');
    bytes[48 + 136] = bytes[48 + 136]! ^ 0xff; // a byte of MRTD inside the signed TD report
    raw.sendJson({ ...good, quote: bytes.toString('base64') });
    let reasons = await refused(pending);
    assert.ok(reasons.includes('quote signature does not verify with the attestation key'), JSON.stringify(reasons));

    // The agent (or the control plane) replays the quote it gave the control plane earlier.
    pending = ee.connect('demo');
    req = await raw.next('attest_request');
    raw.sendJson({ ...own, nonce: req.nonce });
    reasons = await refused(pending);
    assert.ok(
      reasons.includes(DCAP_REASONS.reportData) || reasons.includes(ROUTER_REASONS.reportDataUnbound),
      JSON.stringify(reasons),
    );
    assert.equal(raw.streams_opened, 0, 'nothing reached the app');
    assert.equal(
      (await ee.connect('demo', { verify: false }).then((a) => a.get('/x'))).status,
      200,
      'the app itself is up',
    );
  });
});

describe('SDK verification: report_data domains', () => {
  test('forge-1: an agent answering a relayed nonce in the tunnel or self domain is refused; the relay domain passes', async () => {
    const s = await sealed();
    const raw = await RawAgent.connect(wsUrl(s.cp), { network: 'forge-1' });
    raw.serve();
    await attestTdx(raw, s.t.rot, GOOD);
    await waitRoutable(s.cp);
    const ee = new EasyEnclave({ url: s.cp.api_url, policy: policyJson('client-1'), trust: clientTrust(s.t) });
    for (const domain of [REPORT_DATA_DOMAINS.tunnel, REPORT_DATA_DOMAINS.self, REPORT_DATA_DOMAINS.relay]) {
      const pending = ee.verifyApp('demo');
      const req = await raw.next('attest_request');
      assert.equal(req.reason, 'client');
      const answer = tdxAnswer(raw, s.t.rot, req, GOOD, { domain });
      assert.equal(answer.pop_signature, undefined, 'a relayed answer carries no proof of possession');
      raw.sendJson(answer);
      if (domain === REPORT_DATA_DOMAINS.relay) {
        assert.equal((await pending).evidence_type, 'tdx');
      } else {
        const reasons = await refused(pending);
        assert.ok(
          reasons.includes(DCAP_REASONS.reportData) || reasons.includes(ROUTER_REASONS.reportDataUnbound),
          `${domain}: ${JSON.stringify(reasons)}`,
        );
      }
    }
    assert.equal(raw.streams_opened, 0, 'nothing reached the app');
  });

  /** A stand-in control plane serving sandbox evidence made in the domain the test chooses. */
  async function standIn(): Promise<{ url: string; domain: { app: ReportDataDomain; self: ReportDataDomain } }> {
    const provider = new SandboxQuoteProvider({ repo: 'acme/demo', release_tag: 'v1.0.0' });
    const keyset = publicKeyset(generateKeyset());
    const domain = {
      app: REPORT_DATA_DOMAINS.relay as ReportDataDomain,
      self: REPORT_DATA_DOMAINS.self as ReportDataDomain,
    };
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const nonce = Buffer.from(url.searchParams.get('nonce') ?? '', 'hex');
      const app = url.pathname === '/v1/apps/demo/attestation';
      const report_data = computeReportData(app ? domain.app : domain.self, nonce, keyset);
      void provider.getQuote(report_data).then((quote) => {
        const common = {
          evidence_type: 'sandbox',
          sandbox: true,
          nonce: nonce.toString('hex'),
          quote: quote.toString('base64'),
          report_data: report_data.toString('hex'),
          keyset,
          measurements: { ...provider.measurements },
          repo: 'acme/demo',
          release_tag: 'v1.0.0',
        };
        const body = app
          ? { ...common, app: 'demo', agent_id: 'agent-standin-1', network: 'sandbox-1', sealed: false }
          : common;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise((r) => server.close(r)));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, domain };
  }

  test('verifyApp accepts only relay-domain evidence, verifyControlPlane only self-domain evidence', async () => {
    const s = await standIn();
    const ee = new EasyEnclave({ url: s.url, network: 'sandbox-1' });
    assert.equal((await ee.verifyApp('demo')).agent_id, 'agent-standin-1');
    assert.equal((await ee.verifyControlPlane()).evidence_type, 'sandbox');
    for (const d of [REPORT_DATA_DOMAINS.tunnel, REPORT_DATA_DOMAINS.self]) {
      s.domain.app = d;
      assert.deepEqual(
        await refused(ee.verifyApp('demo')),
        [SANDBOX_REASONS.reportDataMismatch],
        `app evidence in ${d}`,
      );
    }
    for (const d of [REPORT_DATA_DOMAINS.tunnel, REPORT_DATA_DOMAINS.relay]) {
      s.domain.self = d;
      assert.deepEqual(
        await refused(ee.verifyControlPlane()),
        [SANDBOX_REASONS.reportDataMismatch],
        `control-plane evidence in ${d}`,
      );
    }
  });
});

describe('verifyControlPlane', () => {
  const cpPolicy = (release_tag: string) => {
    const m = sandboxMeasurements('easyenclave/control-plane', '0.1.0');
    return {
      version: `cp-${release_tag}`,
      measurements: [{ repo: 'easyenclave/control-plane', release_tag, mrtd: m.mrtd, rtmr0: m.rtmr0 }],
      tcb: { allowed_statuses: ['UpToDate'], out_of_date_grace_days: 0 },
      advisory_deny: [],
      networks: { 'sandbox-1': { sealed: false } },
    };
  };

  test('sandbox evidence passes with a sandbox policy and fails with a mismatched one, or where sealed is required', async () => {
    const cp = await startCp({ EE_TSM_PATH: `${tmpDir()}/no-tsm` });
    const ee = new EasyEnclave({ url: cp.api_url, network: 'sandbox-1' });
    const ok = await ee.verifyControlPlane({ policy: cpPolicy('0.1.0') });
    assert.equal(ok.evidence_type, 'sandbox');
    assert.equal(ok.repo, 'easyenclave/control-plane');
    assert.equal(ok.policy_version, 'cp-0.1.0');
    assert.equal(ok.measurements.mrtd, sandboxMeasurements('easyenclave/control-plane', '0.1.0').mrtd);

    const mismatched = await refused(ee.verifyControlPlane({ policy: cpPolicy('9.9.9') }));
    assert.deepEqual(mismatched, [POLICY_REASONS.releaseNotAllowed('easyenclave/control-plane', '0.1.0')]);
    const wrongMrtd = {
      ...cpPolicy('0.1.0'),
      measurements: [{ repo: 'easyenclave/control-plane', release_tag: '0.1.0', mrtd: 'ab'.repeat(48) }],
    };
    assert.ok((await refused(ee.verifyControlPlane({ policy: wrongMrtd })))[0]!.startsWith('unknown MRTD'));

    // A client that did not opt into sandbox evidence (no sandbox network configured) refuses it.
    const strict = await refused(
      new EasyEnclave({ url: cp.api_url }).verifyControlPlane({ policy: cpPolicy('0.1.0') }),
    );
    assert.ok(strict.includes(SANDBOX_REASONS.sealed), JSON.stringify(strict));
    // ... unless it says so explicitly.
    assert.equal(
      (
        await new EasyEnclave({ url: cp.api_url }).verifyControlPlane({
          policy: cpPolicy('0.1.0'),
          allow_sandbox: true,
        })
      ).evidence_type,
      'sandbox',
    );
  });
});
