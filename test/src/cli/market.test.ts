// The market's `ee` commands as subprocesses against a real control plane with a ManualClock and a real agent
// bound by its node token: `ee nodes register|list|show|stake|unstake`, `ee leases create|show|cancel`,
// `ee settle` / `ee settlements finalize|show`, `ee abuse report|show|authorize`, `ee usage report`. Exact
// amounts, --json, finalize twice = same outcome, exit codes (usage 2 before any request, refusals 1 with the
// API's code), and no secret (admin token, API keys, service tokens, the node token after its one showing)
// in any later output.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '@easyenclave/control-plane/clock';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { ADMIN_TOKEN, closeAll, freePort, startCp } from '../helpers/network.js';
import { freshHealth, HOUR, iso, LAUNCHER, MIN, nextPeriod, nodeAgent, pass, T0, UPTIME } from '../market/util.js';
import { ee, failsWith, json, show, type Run } from './util.js';

const REQUIRED = 100_000 * 4 * 24; // $0.10 × 4 vCPUs × 24 h (standard tier)
const FIRST_LOCK = 166_667; // ceil($0.10 × 2 vCPUs × 50/60 h) in micro-USD

describe('ee nodes / leases / settle / abuse (market)', () => {
  const clock = new ManualClock(T0 + 10 * MIN);
  let cp: ControlPlane;
  let admin: Record<string, string>;
  let asProvider: Record<string, string>;
  let asUser: Record<string, string>;
  let asLauncher: Record<string, string>;
  /** Nothing listens there: a command that sent a request would exit 1 (unreachable), not 2. */
  let nowhere: Record<string, string>;
  let providerKey: string;
  let userKey: string;
  let user: string;
  let node: string;
  let nodeToken: string;
  let lease: string;
  let report: string;
  /** Everything printed after the node token's one showing; checked for secrets at the end. */
  const later: Run[] = [];
  const run = async (args: string[], env: Record<string, string>) => {
    const r = await ee(args, env);
    later.push(r);
    return r;
  };

  before(async () => {
    // Settlement delay 1 day: the scheduler never finalizes during the test, so `ee settle` is what does.
    cp = await startCp(
      {
        EE_HEALTH_TIMEOUT_SEC: '1800',
        EE_SETTLEMENT_DELAY: '1d',
        EE_LAUNCHER_TOKEN: LAUNCHER,
        EE_UPTIME_TOKEN: UPTIME,
        EE_OUTAGE_THRESHOLD_STANDARD: '30d',
        EE_UNSTAKE_COOLDOWN: '0s',
      },
      { clock },
    );
    admin = { EE_CONTROL_URL: cp.api_url, EE_ADMIN_TOKEN: ADMIN_TOKEN };
    const p = json(await ee(['accounts', 'create', '--kind', 'provider', '--name', 'Acme', '--json'], admin));
    const u = json(await ee(['accounts', 'create', '--kind', 'user', '--name', 'Alice', '--json'], admin));
    providerKey = p.api_key;
    userKey = u.api_key;
    user = u.account_id;
    for (const [account, amount] of [
      [p.account_id, '$1000'],
      [user, '$100'],
    ] as const) {
      json(
        await ee(
          [
            'credits',
            'purchase',
            '--account',
            account,
            '--amount',
            amount,
            '--payment-ref',
            `pay-${account}`,
            '--json',
          ],
          admin,
        ),
      );
    }
    asProvider = { EE_CONTROL_URL: cp.api_url, EE_API_KEY: providerKey };
    asUser = { EE_CONTROL_URL: cp.api_url, EE_API_KEY: userKey };
    asLauncher = { EE_CONTROL_URL: cp.api_url, EE_LAUNCHER_TOKEN: LAUNCHER };
    nowhere = { EE_CONTROL_URL: `http://127.0.0.1:${await freePort()}`, EE_ADMIN_TOKEN: ADMIN_TOKEN };
  });
  after(closeAll);

  it('register prints the node token once; a replay of the same request does not', async () => {
    const args = [
      'nodes',
      'register',
      '--region',
      'eu-west',
      '--tier',
      'standard',
      '--vcpus',
      '4',
      '--price',
      '$0.10',
      '--name',
      'acme-1',
      '--idempotency-key',
      'cli-node-1',
    ];
    const r = await ee(args, asProvider);
    assert.equal(r.code, 0, show(r));
    node = /^Node\s+(node_[0-9a-f]{16})$/m.exec(r.stdout)?.[1] ?? assert.fail(r.stdout);
    nodeToken = /^Node token\s+(ee_node_\S+)$/m.exec(r.stdout)?.[1] ?? assert.fail(r.stdout);
    assert.match(r.stdout, /Price\s+\$0\.10 per vCPU-hour/);
    assert.match(r.stdout, /not shown again/);
    const replay = json(await run([...args, '--json'], asProvider));
    assert.equal(replay.node_id, node);
    assert.equal(replay.node_token, null);
    const replayTable = await run(args, asProvider);
    assert.match(replayTable.stdout, /Node token\s+\(already shown/);
  });

  it('stake, then show --json: stake held and required, eligibility with a bound agent', async () => {
    const before = json(await run(['nodes', 'show', node, '--json'], asProvider));
    assert.equal(before.stake.required_micro_usd, REQUIRED);
    assert.equal(before.eligible, false);
    assert.deepEqual(before.ineligible_reasons, ['stake_below_required', 'no_attested_agent']);
    await nodeAgent(cp, nodeToken);
    await freshHealth(cp, clock, [node]);
    const s = json(await run(['nodes', 'stake', node, '--amount', '$9.60', '--json'], asProvider));
    assert.equal(s.amount_micro_usd, REQUIRED);
    assert.equal(s.stake.held_micro_usd, REQUIRED);
    assert.equal(s.eligible, true, JSON.stringify(s));
    const d = json(await run(['nodes', 'show', node, '--json'], asProvider));
    assert.equal(d.stake.held_micro_usd, REQUIRED);
    assert.equal(d.stake.required_micro_usd, REQUIRED);
    assert.equal(d.eligible, true);
    assert.deepEqual(d.ineligible_reasons, []);
    assert.equal(d.agents.length, 1);
    const table = await run(['nodes', 'show', node], asProvider);
    assert.match(table.stdout, /Stake held\s+\$9\.60 \(per provider\)/);
    assert.match(table.stdout, /Eligible\s+yes/);
    const list = json(await run(['nodes', 'list', '--json'], admin));
    assert.deepEqual(
      list.nodes.map((n: { node_id: string; eligible: boolean }) => [n.node_id, n.eligible]),
      [[node, true]],
    );
  });

  it('leases create / show: routed to the node, the prorated first period locked', async () => {
    const c = json(await run(['leases', 'create', '--app', 'demo', '--vcpus', '2', '--json'], asUser));
    lease = c.lease_id;
    assert.equal(c.node_id, node);
    assert.equal(c.lock.amount_micro_usd, FIRST_LOCK);
    assert.equal(c.lock.period, iso(T0));
    const l = json(await run(['leases', 'show', lease, '--json'], asUser));
    assert.deepEqual(
      l.lease_periods.map((p: { status: string; amount_micro_usd: number }) => [p.status, p.amount_micro_usd]),
      [['locked', FIRST_LOCK]],
    );
    const table = await run(['leases', 'show', lease], asUser);
    assert.match(table.stdout, /Locked\s+\$0\.166667/);
  });

  it('settle a past period: posted to the provider; finalizing twice changes nothing', async () => {
    failsWith(await run(['settle', iso(T0)], admin), 1, /ee: period_not_ended: /);
    await nextPeriod(cp, clock, [node]); // T0 + 1 h: the first period ended, the second is locked
    await pass(cp, clock, 5 * MIN, [node]);
    const first = json(await run(['settle', iso(T0), '--json'], admin));
    assert.deepEqual([first.lease_periods, first.posted, first.voided, first.already_finalized], [1, 1, 0, 0]);
    const second = json(await run(['settlements', 'finalize', iso(T0), '--json'], admin));
    assert.deepEqual([second.lease_periods, second.posted, second.voided, second.already_finalized], [1, 1, 0, 1]);
    assert.deepEqual(
      second.results.map((r: { lease_id: string; status: string }) => [r.lease_id, r.status]),
      first.results.map((r: { lease_id: string; status: string }) => [r.lease_id, r.status]),
    );
    const shown = json(await run(['settlements', 'show', iso(T0), '--json'], admin));
    assert.deepEqual(
      shown.lease_periods.map((p: { lease_id: string; status: string; amount_micro_usd: number }) => [
        p.lease_id,
        p.status,
        p.amount_micro_usd,
      ]),
      [[lease, 'posted', FIRST_LOCK]],
    );
    const table = await run(['settlements', 'show', String(T0 / HOUR)], admin);
    assert.match(table.stdout, new RegExp(`${lease}.*posted`));
    const bal = json(await run(['credits', 'balance', '--json'], asProvider));
    assert.equal(bal.available_micro_usd, 1000_000_000 - REQUIRED + FIRST_LOCK);
  });

  it('abuse report (launcher token) + authorize (admin) fail the period; cancel stops renewals', async () => {
    const filed = json(
      await run(
        ['abuse', 'report', '--node', node, '--lease', lease, '--reason', 'served malware', '--json'],
        asLauncher,
      ),
    );
    report = filed.report_id;
    assert.equal(filed.status, 'filed');
    assert.equal(filed.period, iso(T0 + HOUR));
    const auth = json(await run(['abuse', 'authorize', report, '--json'], admin));
    assert.equal(auth.status, 'authorized');
    assert.equal(json(await run(['abuse', 'show', report, '--json'], admin)).status, 'authorized');
    const u = json(
      await run(
        [
          'usage',
          'report',
          '--node',
          node,
          '--period',
          iso(T0 + HOUR),
          '--missed-checks',
          '0',
          '--units',
          '2',
          '--json',
        ],
        { EE_CONTROL_URL: cp.api_url, EE_UPTIME_TOKEN: UPTIME },
      ),
    );
    assert.equal(u.missed_checks, 0);
    failsWith(await run(['nodes', 'unstake', node], asProvider), 1, /ee: open_periods: /);
    const cancelled = json(await run(['leases', 'cancel', lease, '--json'], asUser));
    assert.deepEqual([cancelled.status, cancelled.end_reason], ['ended', 'cancelled']);
    await nextPeriod(cp, clock, [node]);
    const f = json(await run(['settle', iso(T0 + HOUR), '--json'], admin));
    assert.deepEqual(
      f.results.map((r: { status: string; reasons: string[] }) => [r.status, r.reasons]),
      [['voided', [`abuse_report:${report}`]]],
    );
    const l = json(await run(['leases', 'show', lease, '--json'], asUser));
    assert.deepEqual(
      l.lease_periods.map((p: { status: string }) => p.status),
      ['posted', 'voided'],
      'cancelled: no third period',
    );
    const un = json(await run(['nodes', 'unstake', node, '--json'], asProvider));
    assert.equal(un.amount_micro_usd, REQUIRED);
    assert.equal(un.eligible, false);
  });

  it('lists: leases list (user, provider, admin), payouts list|show paged, abuse list, nodes list --mine', async () => {
    const ids = (r: Run, key: string, id: string) => json(r)[key].map((x: Record<string, string>) => x[id]);
    for (const env of [asUser, asProvider, admin])
      assert.deepEqual(ids(await run(['leases', 'list', '--json'], env), 'leases', 'lease_id'), [lease]);
    const table = await run(['leases', 'list'], asUser);
    assert.match(table.stdout, new RegExp(`^${lease}\\s+ended\\s+demo\\s+${node}\\s`, 'm'), show(table));
    assert.deepEqual(ids(await run(['nodes', 'list', '--mine', '--json'], asProvider), 'nodes', 'node_id'), [node]);
    assert.deepEqual(ids(await run(['abuse', 'list', '--node', node, '--json'], admin), 'reports', 'report_id'), [
      report,
    ]);

    assert.deepEqual(json(await run(['payouts', 'list', '--json'], asProvider)).payouts, []);
    const made: string[] = [];
    for (const reference of ['wire-1', 'wire-2']) {
      const res = await fetch(`${cp.api_url}/v1/payouts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          provider: json(await run(['nodes', 'show', node, '--json'], asProvider)).provider,
          amount: '$1',
          reference,
        }),
      });
      assert.equal(res.status, 201);
      made.push(((await res.json()) as { payout_id: string }).payout_id);
    }
    const first = json(await run(['payouts', 'list', '--limit', '1', '--json'], asProvider));
    assert.equal(first.payouts.length, 1);
    assert.equal(typeof first.next_cursor, 'string');
    const all = ids(
      await run(['payouts', 'list', '--limit', '1', '--all', '--json'], asProvider),
      'payouts',
      'payout_id',
    );
    assert.deepEqual(new Set(all), new Set(made));
    const next = json(
      await run(['payouts', 'list', '--limit', '1', '--cursor', first.next_cursor, '--json'], asProvider),
    );
    assert.deepEqual([first.payouts[0].payout_id, next.payouts[0].payout_id], all);
    const one = await run(['payouts', 'show', made[0]!], asProvider);
    assert.match(one.stdout, /^Amount\s+\$1\.00$/m, show(one));
    failsWith(await run(['payouts', 'list'], asUser), 1, /^ee: forbidden: payouts belong to provider accounts/);
    failsWith(await run(['payouts', 'show', made[0]!], asUser), 1, /^ee: unknown_payout: /);
    failsWith(await run(['payouts', 'list', '--cursor', 'bm90LWEtY3Vyc29y'], asProvider), 1, /^ee: invalid_cursor: /);
  });

  it('API refusals exit 1 with the API code', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['leases', 'create', '--app', 'nosuchapp', '--vcpus', '1'], asUser, /ee: no_eligible_node: /],
      [['nodes', 'stake', node, '--amount', '$5000'], asProvider, /ee: insufficient_funds: /],
      [['nodes', 'show', node], asUser, /ee: unknown_node: /],
      [['leases', 'show', 'lease_0000000000000000'], asUser, /ee: unknown_lease: /],
      [['abuse', 'authorize', 'abuse_0000000000000000'], admin, /ee: unknown_report: /],
      [
        ['abuse', 'report', '--node', node, '--reason', 'x'],
        { EE_CONTROL_URL: cp.api_url, EE_LAUNCHER_TOKEN: 'wrong-launcher-token-0123456789' },
        /ee: unauthorized: .*EE_LAUNCHER_TOKEN/,
      ],
      [['abuse', 'report', '--node', 'node_0000000000000000', '--reason', 'x'], asLauncher, /ee: unknown_node: /],
      [['settle', iso(T0)], asUser, /ee: forbidden: |ee: unauthorized: /],
      [['nodes', 'list'], asProvider, /ee: forbidden: |ee: unauthorized: /],
      [['settle', iso(T0 + 10 * HOUR)], admin, /ee: period_not_ended: /],
    ];
    for (const [args, env, stderr] of cases) failsWith(await run(args, env), 1, stderr);
  });

  it('bad input exits 2 before any request', async () => {
    const node0 = 'node_0123456789abcdef';
    const reg = ['nodes', 'register', '--region', 'eu-west', '--tier', 'standard', '--vcpus', '4'];
    const cases: Array<[string[], RegExp]> = [
      [[...reg, '--price', 'ten'], /--price: invalid amount/],
      [[...reg, '--price', '-0.10'], /--price: invalid amount/],
      [[...reg, '--price', '0'], /--price: invalid amount/],
      [[...reg, '--price-micro-usd', '1.5'], /--price-micro-usd must be a positive integer/],
      [reg, /exactly one of --price .* and --price-micro-usd/],
      [[...reg, '--price', '1', '--price-micro-usd', '1'], /exactly one of --price/],
      [
        ['nodes', 'register', '--region', 'eu-west', '--tier', 'gold', '--vcpus', '4', '--price', '1'],
        /--tier must be one of premium, standard, economy/,
      ],
      [
        ['nodes', 'register', '--region', 'eu-west', '--tier', 'economy', '--vcpus', '0', '--price', '1'],
        /--vcpus must be an integer from 1 to 4096/,
      ],
      [[...reg, '--price', '1', '--ppid', 'xyz'], /--ppid must be 32/],
      [[...reg, '--price', '1', '--provider', 'user:0123456789abcdef0123'], /--provider must be a provider account/],
      [
        ['nodes', 'register', '--tier', 'standard', '--vcpus', '4', '--price', '1'],
        /required option '--region <region>'/,
      ],
      [['nodes', 'stake', node0, '--amount', '0'], /--amount: invalid amount/],
      [['nodes', 'stake', node0], /exactly one of --amount/],
      [['nodes', 'unstake', node0, '--micro-usd', '-1'], /--micro-usd must be a positive integer/],
      [['nodes', 'show', 'node/../../v1/apps'], /is not a node id/],
      [['leases', 'create', '--app', 'Bad_App', '--vcpus', '1'], /--app must be an app name/],
      [['leases', 'create', '--app', 'demo', '--vcpus', '2', '--periods', '0'], /--periods must be an integer/],
      [['leases', 'create', '--app', 'demo'], /required option '--vcpus <n>'/],
      [['leases', 'cancel'], /missing required argument 'lease'/],
      [['settle', '2026-11-22T03:30:00Z'], /period must be a period start in ISO-8601 on the hour/],
      [['settle', 'yesterday'], /period must be/],
      [['settlements', 'show', '-1'], /unknown option|period must be/],
      [['abuse', 'report', '--node', node0], /required option '--reason <text>'/],
      [['abuse', 'report', '--node', node0, '--reason', 'x', '--period', 'now'], /--period must be/],
      [['abuse', 'authorize', 'a b'], /is not a report id/],
      [
        ['usage', 'report', '--node', node0, '--period', iso(T0), '--missed-checks', 'many'],
        /--missed-checks must be an integer/,
      ],
    ];
    const runs = await Promise.all(cases.map(([args]) => run(args, nowhere)));
    runs.forEach((r, i) => failsWith(r, 2, cases[i]![1]));
  });

  it('a POST whose outcome is unknown names the Idempotency-Key to retry with', async () => {
    const r = await run(['nodes', 'stake', node, '--amount', '1', '--idempotency-key', 'cli-stake-retry'], nowhere);
    failsWith(
      r,
      1,
      /ee: unreachable: .*connection refused.*\(to retry safely, repeat the command with --idempotency-key cli-stake-retry\)/,
    );
  });

  it('secrets given by flag or environment are redacted, even when echoed back', async () => {
    const flagged = 'uptime-secret-given-by-flag-0123';
    const cases: Array<[string[], Record<string, string>, string]> = [
      [['settle', LAUNCHER], { EE_LAUNCHER_TOKEN: LAUNCHER }, LAUNCHER],
      [['settle', nodeToken], { EE_NODE_TOKEN: nodeToken }, nodeToken],
      [
        [
          'usage',
          'report',
          '--uptime-token',
          flagged,
          '--node',
          'node_0123456789abcdef',
          '--period',
          flagged,
          '--missed-checks',
          '0',
        ],
        {},
        flagged,
      ],
    ];
    for (const [args, env, secret] of cases) {
      const r = await ee(args, env);
      failsWith(r, 2, /\[redacted\]/);
      assert.ok(!r.stderr.includes(secret), show(r));
    }
  });

  it('no secret in any output after the node token was first shown', () => {
    assert.ok(later.length > 40);
    for (const r of later) {
      for (const secret of [ADMIN_TOKEN, providerKey, userKey, LAUNCHER, UPTIME, nodeToken]) {
        assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `a secret was printed:\n${show(r)}`);
      }
    }
  });

  it('--help of every market command exits 0 with its options and an example', async () => {
    const COMMANDS: Array<[string[], string[]]> = [
      [
        ['nodes', 'register'],
        [
          '--region',
          '--tier',
          '--vcpus',
          '--price',
          '--price-micro-usd',
          '--capacity-months',
          '--network',
          '--ppid',
          '--provider',
          '--idempotency-key',
          '--json',
        ],
      ],
      [
        ['nodes', 'list'],
        ['--admin-token', '--json'],
      ],
      [
        ['nodes', 'show'],
        ['<node>', '--api-key', '--json'],
      ],
      [
        ['nodes', 'stake'],
        ['<node>', '--amount', '--micro-usd', '--idempotency-key'],
      ],
      [
        ['nodes', 'unstake'],
        ['<node>', '--amount', '--micro-usd'],
      ],
      [
        ['leases', 'create'],
        ['--app', '--vcpus', '--periods', '--user', '--idempotency-key', '--json'],
      ],
      [
        ['leases', 'show'],
        ['<lease>', '--json'],
      ],
      [
        ['leases', 'cancel'],
        ['<lease>', '--json'],
      ],
      [['settle'], ['<period>', '--idempotency-key', '--json']],
      [
        ['settlements', 'finalize'],
        ['<period>', '--idempotency-key', '--json'],
      ],
      [
        ['settlements', 'show'],
        ['<period>', '--json'],
      ],
      [
        ['abuse', 'report'],
        ['--node', '--reason', '--lease', '--period', '--launcher-token', '--idempotency-key'],
      ],
      [
        ['abuse', 'show'],
        ['<report>', '--json'],
      ],
      [
        ['abuse', 'authorize'],
        ['<report>', '--admin-token'],
      ],
      [
        ['usage', 'report'],
        ['--node', '--period', '--missed-checks', '--units', '--uptime-token'],
      ],
    ];
    const runs = await Promise.all(COMMANDS.map(([path]) => ee([...path, '--help'])));
    runs.forEach((r, i) => {
      const [path, options] = COMMANDS[i]!;
      assert.equal(r.code, 0, show(r));
      for (const o of options)
        assert.ok(r.stdout.includes(o), `ee ${path.join(' ')} --help does not mention ${o}\n${r.stdout}`);
      const examples = r.stdout.split('\nExamples:\n')[1] ?? '';
      assert.ok(examples.includes(`ee ${path.join(' ')} `), `no example of ee ${path.join(' ')}\n${r.stdout}`);
    });
  });
});
