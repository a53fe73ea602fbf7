#!/usr/bin/env node
// Attestation benchmark (issue 3): TDX quote verifications per second, ours against plain @phala/dcap-qvl on the
// same quotes, in the same run, on the same machine. Standalone: `node bench/attestation.mjs` (after `npx tsc -b`).
//
//   ours      DcapVerifier with a warm cache (the control plane's verifier: header, report_data binding and
//             policy for generated quotes, dcap-qvl's verdict cached per platform/collateral/time window, our own
//             quote-signature check, CRL checks, TCB policy)
//   dcap-qvl  QuoteVerifier.verify(quote, collateral, now) for every quote (what a naive verifier does)
//
// Workloads:
//   fixture    the real Intel-signed quote (test/fixtures/tdx) at a time inside its collateral window, Intel root
//   generated  N distinct quotes from one generated platform (test root of trust, DcapVerifier.newWithRootCa),
//              each bound to its own nonce and keyset, verified with a policy — the control plane's steady state
//
// Options: --seconds S (per measurement, default 2), --quotes N (generated quotes, default 200), --json.
// Goal: ours ≥ 5× dcap-qvl. Exit 0 always (a benchmark is not a test), unless verification itself fails.

import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QuoteVerifier } from '@phala/dcap-qvl';
import {
  computeReportData,
  DcapVerifier,
  generateKeyset,
  INTEL_SGX_ROOT_CA_DER,
  newNonce,
  normalizeCollateral,
  parsePolicy,
  publicKeyset,
  REPORT_DATA_DOMAINS,
  StaticCollateralSource,
} from '@easyenclave/attestation';
import { TestRootOfTrust } from '@easyenclave/attestation/testing/root-of-trust';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'tdx');
const FIXTURE_AT_S = 1750329147 + 86_400; // inside the fixture's window (1750329147 … 1752919234)

const argv = process.argv.slice(2);
const arg = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const SECONDS = arg('--seconds', 2);
const NQUOTES = arg('--quotes', 200);
const JSON_OUT = argv.includes('--json');
const silent = { warn: () => undefined };

/** Runs fn over the inputs round-robin for ~seconds (after a warm-up); returns verifications per second. */
async function measure(inputs, fn, seconds = SECONDS) {
  for (let i = 0; i < Math.min(inputs.length, 50); i++) await fn(inputs[i]); // warm-up (fills caches, JIT)
  let n = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  for (;;) {
    // Batches of 10 between clock reads keep the timing overhead out of the fast path.
    for (let k = 0; k < 10; k++) await fn(inputs[n++ % inputs.length]);
    const elapsed = process.hrtime.bigint() - start;
    if (elapsed >= budget) return { ops: n, seconds: Number(elapsed) / 1e9, per_s: n / (Number(elapsed) / 1e9) };
  }
}

function fail(msg) {
  process.stderr.write(`bench/attestation: ${msg}\n`);
  process.exit(1);
}

// ---- fixture: the real Intel quote ----
const fixtureQuote = readFileSync(join(FIXTURES, 'tdx_quote.bin'));
const fixtureCollateral = normalizeCollateral(
  JSON.parse(readFileSync(join(FIXTURES, 'tdx_quote_collateral.json'), 'utf8')),
);
const intelQvl = new QuoteVerifier(INTEL_SGX_ROOT_CA_DER);
const intelOurs = new DcapVerifier({ collateral: new StaticCollateralSource(fixtureCollateral) });
const fixtureAtMs = FIXTURE_AT_S * 1000;
{
  const r = await intelOurs.report(fixtureQuote, fixtureAtMs);
  if (!r.ok || r.tcb_status !== 'UpToDate') fail(`our verifier rejects the fixture: ${r.reasons.join('; ')}`);
  const q = intelQvl.verify(fixtureQuote, fixtureCollateral.qvl, FIXTURE_AT_S);
  if (q.status !== 'UpToDate') fail(`dcap-qvl says ${q.status} for the fixture`);
}

// ---- generated: N quotes from one platform, each bound to its own nonce and keyset ----
const rot = await TestRootOfTrust.create();
const genCollateral = normalizeCollateral(await rot.collateral());
const m48 = (s) => createHash('sha384').update(s).digest();
const build = {
  mrtd: m48('bench mrtd'),
  rtmr0: m48('bench rtmr0'),
  rtmr1: m48('bench rtmr1'),
  rtmr2: m48('bench rtmr2'),
};
const policy = parsePolicy({
  version: 'bench-1',
  measurements: [
    {
      repo: 'bench/app',
      release_tag: 'v1',
      ...Object.fromEntries(Object.entries(build).map(([k, v]) => [k, v.toString('hex')])),
    },
  ],
  tcb: { allowed_statuses: ['UpToDate', 'SWHardeningNeeded'], out_of_date_grace_days: 0 },
  advisory_deny: [],
  networks: { 'forge-1': { sealed: true } },
});
const subject = { agent_id: 'bench', app_name: 'bench', repo: 'bench/app', release_tag: 'v1', network: 'forge-1' };
const requests = [];
for (let i = 0; i < NQUOTES; i++) {
  const keyset = publicKeyset(generateKeyset());
  const nonce = newNonce();
  const domain = REPORT_DATA_DOMAINS.tunnel;
  const quote = rot.quote({ ...build, report_data: computeReportData(domain, nonce, keyset) });
  requests.push({ subject, domain, nonce, keyset, quote, now_ms: rot.now_ms, sealed_required: true });
}
const genQvl = QuoteVerifier.newWithRootCa(rot.root_der);
const genOurs = DcapVerifier.newWithRootCa(rot.root_der, {
  collateral: new StaticCollateralSource(genCollateral),
  policy,
  logger: silent,
});
{
  const v = await genOurs.verify(requests[0]);
  if (!v.ok) fail(`our verifier rejects a generated quote: ${v.reasons.join('; ')}`);
  const q = genQvl.verify(requests[0].quote, genCollateral.qvl, rot.now_s);
  if (q.status !== 'UpToDate') fail(`dcap-qvl says ${q.status} for a generated quote`);
}

// ---- measure ----
const results = {};
results.fixture = {
  ours: await measure([fixtureQuote], async (q) => {
    const r = await intelOurs.report(q, fixtureAtMs);
    if (!r.ok) fail(`fixture rejected during the run: ${r.reasons.join('; ')}`);
  }),
  qvl: await measure([fixtureQuote], (q) => intelQvl.verify(q, fixtureCollateral.qvl, FIXTURE_AT_S)),
};
results.generated = {
  ours: await measure(requests, async (req) => {
    const v = await genOurs.verify(req);
    if (!v.ok) fail(`generated quote rejected during the run: ${v.reasons.join('; ')}`);
  }),
  qvl: await measure(requests, (req) => genQvl.verify(req.quote, genCollateral.qvl, rot.now_s)),
};
for (const r of Object.values(results)) r.ratio = r.ours.per_s / r.qvl.per_s;

const GOAL = 5;
if (JSON_OUT) {
  process.stdout.write(
    `${JSON.stringify({ node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown', seconds: SECONDS, quotes: NQUOTES, goal: GOAL, results }, null, 2)}\n`,
  );
} else {
  const f = (x) => x.toFixed(0).padStart(8);
  const lines = [
    `TDX quote verification, ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} (${SECONDS} s per measurement, single thread)`,
    '',
    'workload                      ours (verif/s)   dcap-qvl (verif/s)   ours/dcap-qvl',
  ];
  const label = { fixture: 'real Intel quote (fixture)', generated: `${NQUOTES} quotes, one platform` };
  for (const [k, r] of Object.entries(results)) {
    lines.push(
      `${label[k].padEnd(30)}${f(r.ours.per_s)}         ${f(r.qvl.per_s)}           ${r.ratio.toFixed(1).padStart(6)}×  ${r.ratio >= GOAL ? `(goal ≥ ${GOAL}× met)` : `(BELOW the ${GOAL}× goal)`}`,
    );
  }
  lines.push(
    '',
    'ours: DcapVerifier, warm cache (generated: full verify with report_data binding and policy); dcap-qvl: QuoteVerifier.verify per quote.',
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}
