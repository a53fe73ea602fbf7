// Attestation policy reload: a changed policy (ControlPlane.reloadPolicy, or the file watcher) applies at once and
// re-attests every connected agent with reason 'policy'; an agent whose measurements are no longer allowed is
// dropped and the failure recorded; one still allowed stays routable and its new record carries the new policy
// version. A policy that fails to parse is logged loudly and the old one stays in force. SIGHUP restarts the
// `ee control-plane` process onto a successor (handoff.ts) that loads the policy afresh; a bad policy makes the
// successor fail and the old process keeps serving.
import assert from 'node:assert/strict';
import { unlinkSync, writeFileSync } from 'node:fs';
import { afterEach, describe, test } from 'node:test';
import { POLICY_REASONS } from '@easyenclave/attestation';
import { closeAll, sleep, spawnCp, startCp, waitFor, waitRoutable, wsUrl } from '../helpers/network.js';
import { newAgentId, RawAgent } from '../lifecycle/raw-agent.js';
import { adminApp, resolveApp } from '../lifecycle/util.js';
import { attestTdx, GOOD, memoryLogger, OTHER, policyJson, sendTdx, trustFiles } from './fixture.js';

afterEach(() => closeAll());

const FORGE = { network: 'forge-1' } as const;

describe('attestation policy reload', () => {
  test('reload re-attests every connected agent (reason policy): the one no longer allowed is dropped, the other stays', async () => {
    const t = await trustFiles(policyJson('p-1', [{ build: GOOD }, { release_tag: 'v2.0.0', build: OTHER }]));
    const cp = await startCp({ ...t.env, EE_QUEUE_TIMEOUT_MS: '200' });
    const oldId = newAgentId();
    const keepId = newAgentId();
    const old = await RawAgent.connect(wsUrl(cp), { ...FORGE, agent_id: oldId });
    old.serve();
    await attestTdx(old, t.rot, GOOD);
    const keep = await RawAgent.connect(wsUrl(cp), {
      ...FORGE,
      app_name: 'keep',
      release_tag: 'v2.0.0',
      agent_id: keepId,
    });
    keep.serve();
    await attestTdx(keep, t.rot, OTHER);
    await waitRoutable(cp, 'demo');
    await waitRoutable(cp, 'keep');

    // v1.0.0 leaves the allowlist.
    t.writePolicy(policyJson('p-2', [{ release_tag: 'v2.0.0', build: OTHER }]));
    const result = await cp.reloadPolicy();
    assert.deepEqual(result, { ok: true, changed: true, policy_version: 'p-2' });

    const reqOld = await old.next('attest_request');
    const reqKeep = await keep.next('attest_request');
    assert.equal(reqOld.reason, 'policy');
    assert.equal(reqKeep.reason, 'policy');
    sendTdx(old, t.rot, reqOld, GOOD);
    sendTdx(keep, t.rot, reqKeep, OTHER);
    const rOld = await old.next('attest_result');
    const rKeep = await keep.next('attest_result');
    assert.equal(rOld.ok, false);
    assert.ok(
      rOld.reasons.includes(POLICY_REASONS.releaseNotAllowed('acme/demo', 'v1.0.0')),
      JSON.stringify(rOld.reasons),
    );
    assert.equal((await old.waitClose()).code, 4002);
    assert.equal(rKeep.ok, true);
    assert.equal((await resolveApp(cp, 'demo')).status, 403);
    assert.equal((await resolveApp(cp, 'keep')).status, 200);

    const oldRows = await cp.store.listAttestations({ agent_id: oldId, limit: 5 });
    assert.deepEqual(
      oldRows.map((r) => [r.reason, r.ok, r.policy_version]),
      [
        ['policy', false, null],
        ['register', true, 'p-1'],
      ],
    );
    assert.match(oldRows[0]!.failure ?? '', /release not in the allowlist/);
    const keepRows = await cp.store.listAttestations({ agent_id: keepId, limit: 5 });
    assert.deepEqual(
      keepRows.map((r) => [r.reason, r.ok, r.policy_version]),
      [
        ['policy', true, 'p-2'],
        ['register', true, 'p-1'],
      ],
    );

    // The same content again changes nothing and challenges nobody for the policy. (Only 'policy' challenges
    // count: on a loaded machine an unrelated one, such as a deadline sweep's, may land in this window.)
    const policyChallenges = () =>
      keep.inbox.filter((m) => m.type === 'attest_request' && m.reason === 'policy').length;
    const before = policyChallenges();
    assert.deepEqual(await cp.reloadPolicy(), { ok: true, changed: false, policy_version: 'p-2' });
    await sleep(300);
    assert.equal(policyChallenges(), before, JSON.stringify(keep.inbox.filter((m) => m.type === 'attest_request')));
  });

  test('a policy that fails to parse is logged loudly and the old one stays in force', async () => {
    const t = await trustFiles(policyJson('p-1'));
    const logs = memoryLogger('info');
    const cp = await startCp(t.env, { logger: logs.logger });
    const raw = await RawAgent.connect(wsUrl(cp), FORGE);
    raw.serve();
    await attestTdx(raw, t.rot, GOOD);
    await waitRoutable(cp);

    for (const bad of [
      '{ not json',
      JSON.stringify({ ...policyJson('p-bad'), tcb: { allowed_statuses: ['Fine'], out_of_date_grace_days: 0 } }),
    ]) {
      t.writePolicy(bad);
      const r = await cp.reloadPolicy();
      assert.equal(r.ok, false);
      assert.equal(r.changed, false);
      assert.equal(r.policy_version, 'p-1');
      const errors = logs
        .lines()
        .filter((l) => l.level === 50 && /ATTESTATION POLICY RELOAD FAILED/.test(String(l.msg)));
      assert.ok(errors.length >= 1, logs.text());
    }
    // A missing file on reload also keeps the policy in force.
    unlinkSync(t.policy_file);
    assert.equal((await cp.reloadPolicy()).ok, false);
    await sleep(300);
    assert.equal(
      raw.inbox.filter((m) => m.type === 'attest_request').length,
      0,
      'no re-attestation for a failed reload',
    );
    assert.equal((await resolveApp(cp)).status, 200);

    // New agents are still judged by p-1.
    const late = await RawAgent.connect(wsUrl(cp), { ...FORGE, app_name: 'late' });
    const { response } = await attestTdx(late, t.rot, GOOD);
    assert.ok(response);
    const rows = await cp.store.listAttestations({ app_name: 'late', limit: 1 });
    assert.equal(rows[0]?.policy_version, 'p-1');
  });

  test('the file watcher picks up a rewritten policy (debounced) and re-attests', async () => {
    const t = await trustFiles(policyJson('w-1'));
    const cp = await startCp(t.env);
    const raw = await RawAgent.connect(wsUrl(cp), FORGE);
    await attestTdx(raw, t.rot, GOOD);
    await waitRoutable(cp);
    // Written in two steps, as an editor might: one reload, after the writes settle.
    writeFileSync(t.policy_file, '{');
    await sleep(20);
    t.writePolicy(policyJson('w-2', [{ build: OTHER }]));
    const req = await raw.next('attest_request', 5000);
    assert.equal(req.reason, 'policy');
    sendTdx(raw, t.rot, req, GOOD);
    const r = await raw.next('attest_result');
    assert.equal(r.ok, false);
    assert.match(r.reasons.join('\n'), /unknown MRTD/);
    assert.equal((await resolveApp(cp)).status, 403);
  });

  test('a policy file created after start-up is picked up: forge-1 goes from rejecting everything to accepting', async () => {
    const t = await trustFiles(null);
    const cp = await startCp(t.env);
    const first = await RawAgent.connect(wsUrl(cp), FORGE);
    first.register();
    sendTdx(first, t.rot, await first.next('attest_request'));
    assert.equal((await first.next('attest_result')).ok, false);
    t.writePolicy(policyJson('created-1')); // no reload call: the directory watcher sees the new file
    await waitFor(
      async () => {
        const a = await RawAgent.connect(wsUrl(cp), { ...FORGE, agent_id: newAgentId() });
        a.register();
        sendTdx(a, t.rot, await a.next('attest_request'));
        return (await a.next('attest_result')).ok === true;
      },
      5000,
      'an agent to be accepted under the new policy',
    );
  });

  test('`ee control-plane` on SIGHUP restarts onto a successor that loads the new policy; a bad policy keeps the old process serving', async () => {
    const t = await trustFiles(policyJson('hup-1'));
    const cp = await spawnCp({ ...t.env, EE_LOG_LEVEL: 'info' });
    let successor = 0;
    try {
      // A policy that does not parse: the successor refuses to start, this process keeps serving with hup-1.
      t.writePolicy('{ "version": ');
      cp.kill('SIGHUP');
      await waitFor(() => /restart failed, still serving/.test(cp.output()), 20_000, 'the failed restart');
      assert.match(cp.output(), /invalid configuration: EE_ALLOWLIST_ASSET must be a valid attestation policy/);
      assert.match(cp.output(), /ATTESTATION POLICY RELOAD FAILED/); // the in-process watcher says it too
      const a = await RawAgent.connect(cp.ws_url, FORGE);
      await attestTdx(a, t.rot, GOOD);
      assert.equal((await adminApp(cp)).json.recent_attestations[0].policy_version, 'hup-1');

      // A good one: the successor serves with it.
      t.writePolicy(policyJson('hup-2', [{ build: OTHER }]));
      cp.kill('SIGHUP');
      successor = Number(
        (await waitFor(() => /successor (\d+) is serving/.exec(cp.output()), 20_000, 'a serving successor'))[1],
      );
      assert.equal(await cp.exited, 0, cp.output());
      const b = await RawAgent.connect(cp.ws_url, { ...FORGE, app_name: 'after' });
      await attestTdx(b, t.rot, OTHER);
      const detail = await adminApp(cp, 'after');
      assert.equal(detail.json.recent_attestations[0].policy_version, 'hup-2');
      const c = await RawAgent.connect(cp.ws_url, { ...FORGE, app_name: 'refused' });
      c.register();
      sendTdx(c, t.rot, await c.next('attest_request'), GOOD);
      const r = await c.next('attest_result');
      assert.equal(r.ok, false);
      assert.match(r.reasons.join('\n'), /unknown MRTD/);
    } finally {
      if (successor) {
        try {
          process.kill(successor, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
});
