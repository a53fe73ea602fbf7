// The attestation policy: strict versioned schema, loading, and evaluation.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DEFAULT_TCB_POLICY,
  evaluateMeasurements,
  evaluatePolicy,
  evaluateTcb,
  loadPolicy,
  parsePolicy,
  POLICY_REASONS,
  QUOTE_REASONS,
} from '@easyenclave/attestation';
import type { PolicyInput } from '@easyenclave/attestation';
import { tmpDir } from '../helpers/tmp.js';

const DAY = 86_400_000;
const h48 = (c: string): string => c.repeat(96);
const base = {
  version: '2026-11-01',
  measurements: [
    { repo: 'org/app', release_tag: 'v1', mrtd: h48('a'), rtmr0: h48('b'), rtmr1: h48('c') },
    { repo: 'org/app', release_tag: 'v1', mrtd: h48('d') }, // a second build of the same release
    { repo: 'org/app', release_tag: 'v2', mrtd: h48('e') },
  ],
  tcb: { allowed_statuses: ['UpToDate', 'SWHardeningNeeded', 'OutOfDate'], out_of_date_grace_days: 30 },
  advisory_deny: ['INTEL-SA-00615'],
  td_attributes: { mask: 'ffffffffffffffff', value: '0000001000000000' },
  networks: { 'forge-1': { sealed: true }, 'sandbox-1': { sealed: false } },
};
const subject = { agent_id: 'x', repo: 'org/app', release_tag: 'v1', app_name: 'app', network: 'forge-1' };
const input = (over: Partial<PolicyInput> = {}): PolicyInput => ({
  mrtd: h48('a'),
  rtmr0: h48('b'),
  rtmr1: h48('c'),
  rtmr2: h48('f'),
  rtmr3: h48('0'),
  td_attributes: '0000001000000000',
  xfam: 'e702060000000000',
  tcb_status: 'UpToDate',
  advisory_ids: [],
  tcb_grace_start: null,
  ...over,
});

describe('policy schema', () => {
  it('parses a valid policy and lowercases hex', () => {
    const p = parsePolicy({ ...base, measurements: [{ repo: 'org/app', release_tag: 'v1', mrtd: h48('A') }] });
    assert.equal(p.version, '2026-11-01');
    assert.equal(p.measurements[0]?.mrtd, h48('a'));
  });

  it('unknown fields are errors, at every level', () => {
    assert.throws(() => parsePolicy({ ...base, extra: 1 }), /invalid attestation policy: .*extra/);
    assert.throws(() => parsePolicy({ ...base, tcb: { ...base.tcb, grace: 3 } }), /tcb.*grace/);
    assert.throws(
      () =>
        parsePolicy({ ...base, measurements: [{ repo: 'o/r', release_tag: 't', mrtd: h48('a'), rtmr4: h48('a') }] }),
      /rtmr4/,
    );
    assert.throws(() => parsePolicy({ ...base, networks: { 'forge-1': { sealed: true, open: true } } }), /open/);
  });

  it('rejects bad values with the path', () => {
    assert.throws(() => parsePolicy({ ...base, version: '' }), /version/);
    assert.throws(
      () => parsePolicy({ ...base, measurements: [{ repo: 'org/app', release_tag: 'v1', mrtd: 'abcd' }] }),
      /measurements\.0\.mrtd: must be 96 hex characters/,
    );
    assert.throws(
      () => parsePolicy({ ...base, measurements: [{ repo: 'no-slash', release_tag: 'v1', mrtd: h48('a') }] }),
      /repo/,
    );
    assert.throws(
      () => parsePolicy({ ...base, tcb: { allowed_statuses: ['Revoked'], out_of_date_grace_days: 1 } }),
      /allowed_statuses/,
    );
    assert.throws(
      () => parsePolicy({ ...base, tcb: { allowed_statuses: ['OutOfDate'], out_of_date_grace_days: 0 } }),
      /grace window is 0 days/,
    );
    assert.throws(() => parsePolicy({ ...base, advisory_deny: ['sa-1'] }), /advisory_deny/);
    assert.throws(
      () => parsePolicy({ ...base, td_attributes: { mask: '00000000000000ff', value: '0000000000000100' } }),
      /outside mask/,
    );
    const { advisory_deny: _omit, ...missing } = base;
    assert.throws(() => parsePolicy(missing), /advisory_deny/);
  });

  it('networks must be known and keep their sealing', () => {
    assert.throws(() => parsePolicy({ ...base, networks: { 'moon-1': { sealed: true } } }), /unknown network "moon-1"/);
    assert.throws(
      () => parsePolicy({ ...base, networks: { 'forge-1': { sealed: false } } }),
      /network "forge-1" is sealed; a policy cannot change that/,
    );
    assert.throws(() => parsePolicy({ ...base, networks: { 'Forge 1': { sealed: true } } }), /must be a network name/);
    // A "__proto__" key never becomes a network (zod drops it), so it cannot be matched either.
    const p = parsePolicy({ ...base, networks: JSON.parse('{"__proto__": {"sealed": false}}') as unknown });
    assert.deepEqual(Object.keys(p.networks), []);
    assert.equal(Object.hasOwn(p.networks, '__proto__'), false);
  });

  it('loadPolicy reads a JSON file and says what is wrong with it', () => {
    const dir = tmpDir();
    const good = join(dir, 'policy.json');
    writeFileSync(good, JSON.stringify(base));
    assert.equal(loadPolicy(good).version, '2026-11-01');
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ not json');
    assert.throws(() => loadPolicy(bad), /is not valid JSON/);
    assert.throws(() => loadPolicy(join(dir, 'missing.json')), /cannot read attestation policy/);
  });
});

describe('policy evaluation', () => {
  const policy = parsePolicy(base);

  it('measurements: allowlisted builds pass; each failure has its reason', () => {
    assert.deepEqual(evaluateMeasurements(policy, input(), subject), []);
    assert.deepEqual(
      evaluateMeasurements(policy, input({ mrtd: h48('d'), rtmr0: h48('9') }), subject),
      [],
      'second build, RTMRs unpinned',
    );
    assert.deepEqual(evaluateMeasurements(policy, input(), { ...subject, release_tag: 'v3' }), [
      POLICY_REASONS.releaseNotAllowed('org/app', 'v3'),
    ]);
    assert.deepEqual(
      evaluateMeasurements(policy, input({ mrtd: h48('e') }), subject),
      [POLICY_REASONS.unknownMrtd(h48('e'), 'org/app', 'v1')],
      'v2 MRTD claimed as v1',
    );
    assert.deepEqual(evaluateMeasurements(policy, input({ rtmr1: h48('9') }), subject), [
      POLICY_REASONS.rtmrMismatch('RTMR1', 'org/app', 'v1', h48('c'), h48('9')),
    ]);
    assert.deepEqual(evaluateMeasurements(policy, input(), { ...subject, network: 'other-1' }), [
      POLICY_REASONS.networkNotInPolicy('other-1', policy.version),
    ]);
    assert.deepEqual(evaluateMeasurements(policy, input({ td_attributes: '0000001000000040' }), subject), [
      'TD attributes 0000001000000040 do not match the policy (mask ffffffffffffffff, value 0000001000000000)',
    ]);
  });

  it('TCB: allowed statuses, the OutOfDate grace window, the deny-list', () => {
    const tcb = { ...policy.tcb, advisory_deny: policy.advisory_deny };
    const now = Date.parse('2026-11-20T00:00:00Z');
    assert.deepEqual(evaluateTcb(tcb, input({ tcb_status: 'SWHardeningNeeded' }), now), []);
    assert.deepEqual(evaluateTcb(tcb, input({ tcb_status: 'ConfigurationNeeded' }), now), [
      POLICY_REASONS.tcbNotAllowed('ConfigurationNeeded'),
    ]);
    assert.deepEqual(evaluateTcb(tcb, input({ tcb_status: 'Revoked' }), now), [
      POLICY_REASONS.tcbNotAllowed('Revoked'),
    ]);
    const start = new Date(now - 10 * DAY).toISOString();
    assert.deepEqual(evaluateTcb(tcb, input({ tcb_status: 'OutOfDate', tcb_grace_start: start }), now), []);
    assert.deepEqual(evaluateTcb(tcb, input({ tcb_status: 'OutOfDate', tcb_grace_start: start }), now + 20 * DAY), [
      POLICY_REASONS.outOfGrace('OutOfDate', start, 30),
    ]);
    assert.deepEqual(evaluateTcb(tcb, input({ tcb_status: 'OutOfDate', tcb_grace_start: null }), now), [
      POLICY_REASONS.outOfGrace('OutOfDate', 'an unknown date', 30),
    ]);
    assert.deepEqual(evaluateTcb(tcb, input({ advisory_ids: ['INTEL-SA-00615', 'INTEL-SA-00001'] }), now), [
      POLICY_REASONS.advisoryDenied('INTEL-SA-00615'),
    ]);
    assert.deepEqual(evaluateTcb(tcb, input({ tcb_status: null }), now), [POLICY_REASONS.tcbUnknown]);
    assert.deepEqual(evaluateTcb(DEFAULT_TCB_POLICY, input({ tcb_status: 'OutOfDate', tcb_grace_start: start }), now), [
      POLICY_REASONS.tcbNotAllowed('OutOfDate'),
    ]);
  });

  it('evaluatePolicy runs every check, debug TD included', () => {
    const now = Date.now();
    assert.deepEqual(evaluatePolicy(policy, input(), subject, now), []);
    const r = evaluatePolicy(
      policy,
      input({ td_attributes: '0100001000000000', mrtd: h48('9'), tcb_status: 'OutOfDateConfigurationNeeded' }),
      subject,
      now,
    );
    assert.deepEqual(r, [
      QUOTE_REASONS.debug,
      POLICY_REASONS.unknownMrtd(h48('9'), 'org/app', 'v1'),
      'TD attributes 0100001000000000 do not match the policy (mask ffffffffffffffff, value 0000001000000000)',
      POLICY_REASONS.tcbNotAllowed('OutOfDateConfigurationNeeded'),
    ]);
  });
});
