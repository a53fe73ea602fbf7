// examples/confidential-inference end to end, every part its own process as a user would run them: `ee
// control-plane`, the example's setup (SDK, admin token), its OpenAI-compatible backend, `ee agent` with the
// node token and unit prices, and the example client (SDK): reserve $1, verify, sealed chat (plain and
// streamed), receipts, and the balance moving by exactly the receipts' sum.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { runExample } from '../helpers/examples.js';
import { ADMIN_TOKEN, closeAll, spawnAgent, spawnCp } from '../helpers/network.js';

after(() => closeAll());

const run = (script: string, env: Record<string, string>) => runExample('confidential-inference', script, env);

const lines = (out: string) =>
  out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, any>);

describe('examples/confidential-inference', () => {
  test('setup, backend, agent and client as processes: sealed chat paid by exactly its receipts', async () => {
    const cp = await spawnCp({ EE_HEALTH_TIMEOUT_SEC: '1800' });
    const setup = await run('setup.mjs', { EE_URL: cp.api_url, EE_ADMIN_TOKEN: ADMIN_TOKEN }).done;
    assert.equal(setup.code, 0, setup.out + setup.err);
    const s = lines(setup.out)[0]!;
    const backend = run('backend.mjs', { PORT: '0' });
    const port = /^listening (\d+)$/.exec(await backend.firstLine)?.[1];
    assert.ok(port, 'backend started');
    spawnAgent({
      control_ws: cp.ws_url,
      backend_url: `http://127.0.0.1:${port}`,
      app_name: 'inference',
      repo: 'acme/inference',
      extra: { EE_NODE_TOKEN: s.node_token, EE_UNIT_PRICES: s.unit_prices },
    });
    // The node becomes eligible once its agent is attested and healthy (the market refreshes every 2 s).
    let client: { code: number | null; out: string; err: string } | undefined;
    for (let i = 0; i < 30; i++) {
      client = await run('client.mjs', { EE_URL: cp.api_url, EE_API_KEY: s.user_api_key, EE_NETWORK: 'sandbox-1' })
        .done;
      if (client.code === 0 || !client.out.includes('no_eligible_node')) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal(client!.code, 0, client!.out + client!.err);
    const steps = lines(client!.out);
    assert.deepEqual(
      steps.map((x) => x.step),
      ['reserved', 'verified', 'answer', 'streamed', 'receipt', 'receipt', 'balance'],
    );
    assert.equal(steps[0]!.node_id, s.node_id);
    assert.equal(steps[0]!.quota, 1_000_000);
    assert.equal(steps[1]!.evidence_type, 'sandbox');
    assert.equal(steps[2]!.content, 'question this of see plane control the does what');
    assert.deepEqual(steps[2]!.usage, { prompt_tokens: 9, completion_tokens: 9, total_tokens: 18 });
    assert.equal(steps[3]!.content, 'me to back answer this stream');
    const receipts = steps.filter((x) => x.step === 'receipt');
    assert.deepEqual(receipts.map((r) => [r.kind, r.units.tokens_in, r.units.tokens_out, r.amount_micro_usd]).sort(), [
      ['tokens', 6, 6, Math.ceil((6 * 150 + 6 * 600) / 1000)],
      ['tokens', 9, 9, Math.ceil((9 * 150 + 9 * 600) / 1000)],
    ]);
    const b = steps[6]!;
    assert.equal(b.moved_micro_usd, b.receipts_sum_micro_usd);
    assert.equal(b.moved_micro_usd, 7 + 5);
    assert.equal(b.exact, true);
  });
});
