// GET /v1/nodes cursor paging, through HTTP, the SDK (`ee.nodes({ limit })`) and the CLI (`ee nodes list`):
// newest first, every node once across pages (two registered in the same millisecond included), a provider
// sees only its own, a bad cursor or limit is 400, a user key 403.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '@easyenclave/control-plane/clock';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { EasyEnclave } from '@easyenclave/sdk';
import { ADMIN_TOKEN, closeAll, startCp } from '../helpers/network.js';
import { ee, failsWith, json, show } from '../cli/util.js';
import { call, createAccount } from '../ledger-http/client.js';
import { registerNode, T0, type Party } from './util.js';

describe('GET /v1/nodes: cursor paging', () => {
  let cp: ControlPlane;
  let acme: Party;
  let bolt: Party;
  let user: Party;
  /** Node ids, newest first. */
  let newest: string[] = [];
  let acmeNodes: string[] = [];

  before(async () => {
    const clock = new ManualClock(T0);
    cp = await startCp({}, { clock });
    acme = await createAccount(cp.api_url, 'provider', 'Acme');
    bolt = await createAccount(cp.api_url, 'provider', 'Bolt');
    user = await createAccount(cp.api_url, 'user', 'User');
    const made: string[] = [];
    for (const [i, p] of [acme, bolt, acme, bolt, acme].entries()) {
      if (i !== 2) clock.advance(1); // nodes 1 and 2 share a millisecond: the id orders them
      const n = await registerNode(cp.api_url, p, { price_per_vcpu_hour: '$0.10' });
      made.push(n.node_id);
      if (p === acme) acmeNodes.push(n.node_id);
    }
    // Newest first: by time, then by id (descending) within one millisecond.
    const [n0, n1, n2, n3, n4] = made as [string, string, string, string, string];
    newest = [n4, n3, ...[n1, n2].sort().reverse(), n0];
    acmeNodes = newest.filter((id) => acmeNodes.includes(id));
  });
  after(closeAll);

  const page = (token: string | undefined, query: string) => call(cp.api_url, 'GET', `/v1/nodes${query}`, { token });

  it('HTTP: pages of 2 hold every node once, newest first; a provider sees its own', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await page(undefined, `?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.nodes.length <= 2);
      seen.push(...r.body.nodes.map((n: { node_id: string }) => n.node_id));
      cursor = r.body.next_cursor;
      pages += 1;
    } while (cursor !== null);
    assert.deepEqual(seen, newest);
    assert.equal(pages, 3);

    const all = await page(undefined, '');
    assert.deepEqual(
      all.body.nodes.map((n: { node_id: string }) => n.node_id),
      newest,
    );
    assert.equal(all.body.next_cursor, null);
    assert.equal(typeof all.body.nodes[0].eligible, 'boolean', 'eligibility is still part of each row');

    const mine = await page(acme.key, '?limit=200');
    assert.deepEqual(
      mine.body.nodes.map((n: { node_id: string }) => n.node_id),
      acmeNodes,
    );
  });

  it('HTTP: a bad cursor or limit is 400, a user key 403', async () => {
    for (const q of ['?cursor=bm90LWEtY3Vyc29y', '?cursor=%25%25', `?cursor=${'A'.repeat(300)}`]) {
      const r = await page(undefined, q);
      assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
    }
    const bad = await page(undefined, '?cursor=bm90LWEtY3Vyc29y');
    assert.equal(bad.body.error.code, 'invalid_cursor');
    assert.equal(bad.body.error.param, 'cursor');
    for (const q of ['?limit=0', '?limit=201', '?limit=x', '?page=2'])
      assert.equal((await page(undefined, q)).status, 400, q);
    const r = await page(user.key, '');
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'forbidden');
  });

  it('SDK: nodes({ limit }) follows every page; { mine: true } uses the API key', async () => {
    const admin = new EasyEnclave({ url: cp.api_url, adminToken: ADMIN_TOKEN });
    const ids: string[] = [];
    for await (const n of admin.nodes({ limit: 2 })) ids.push(n.node_id);
    assert.deepEqual(ids, newest);
    const provider = new EasyEnclave({ url: cp.api_url, apiKey: acme.key });
    const own: string[] = [];
    for await (const n of provider.nodes({ limit: 1, mine: true })) own.push(n.node_id);
    assert.deepEqual(own, acmeNodes);
    await assert.rejects(provider.nodes({ limit: 0, mine: true }).next(), /limit must be an integer/);
  });

  it('CLI: ee nodes list --limit / --cursor / --all; a bad cursor exits 1, a bad limit 2', async () => {
    const admin = { EE_CONTROL_URL: cp.api_url, EE_ADMIN_TOKEN: ADMIN_TOKEN };
    const first = json(await ee(['nodes', 'list', '--limit', '2', '--json'], admin));
    assert.deepEqual(
      first.nodes.map((n: { node_id: string }) => n.node_id),
      newest.slice(0, 2),
    );
    assert.ok(first.next_cursor);
    const next = json(await ee(['nodes', 'list', '--limit', '2', '--cursor', first.next_cursor, '--json'], admin));
    assert.deepEqual(
      next.nodes.map((n: { node_id: string }) => n.node_id),
      newest.slice(2, 4),
    );
    const table = await ee(['nodes', 'list', '--limit', '2'], admin);
    assert.equal(table.code, 0, show(table));
    assert.match(table.stdout, new RegExp(`more: --cursor ${first.next_cursor}`));
    const all = json(await ee(['nodes', 'list', '--limit', '1', '--all', '--json'], admin));
    assert.deepEqual(
      all.nodes.map((n: { node_id: string }) => n.node_id),
      newest,
    );
    assert.equal(all.next_cursor, null);
    const mine = json(
      await ee(['nodes', 'list', '--mine', '--all', '--json'], { EE_CONTROL_URL: cp.api_url, EE_API_KEY: bolt.key }),
    );
    assert.equal(mine.nodes.length, 2);
    failsWith(await ee(['nodes', 'list', '--cursor', 'bm90LWEtY3Vyc29y'], admin), 1, /^ee: invalid_cursor: /);
    failsWith(await ee(['nodes', 'list', '--limit', '0'], admin), 2, /--limit must be an integer from 1 to 200/);
  });
});
