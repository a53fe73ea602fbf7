// Helpers for the market tests: accounts with money, nodes with agents, moving a ManualClock without
// tripping the health timeout (the agents report health every wall-clock second; we wait for a report at
// each step so the control plane sees a passing heartbeat at the new time).
import type { ControlPlane } from '@easyenclave/control-plane/server';
import type { ManualClock } from '@easyenclave/control-plane/clock';
import { startAgent, startBackend, waitFor, wsUrl } from '../helpers/network.js';
import { call, createAccount } from '../ledger-http/client.js';

export const HOUR = 3_600_000;
export const MIN = 60_000;
export const LAUNCHER = 'launcher-token-for-tests';
export const UPTIME = 'uptime-token-for-tests';
/** 2026-11-22T03:00:00Z: a period start (1 h periods). */
export const T0 = Date.UTC(2026, 10, 22, 3, 0, 0);

export interface Party {
  id: string;
  key: string;
}

export async function funded(base: string, kind: 'user' | 'provider', name: string, dollars: string): Promise<Party> {
  const a = await createAccount(base, kind, name);
  const r = await call(base, 'POST', '/v1/credits/purchase', {
    body: { account: a.id, amount: dollars, payment_ref: `pay-${a.id.slice(-8)}` },
  });
  if (r.status !== 201) throw new Error(`purchase: ${r.status} ${JSON.stringify(r.body)}`);
  return a;
}

export async function registerNode(
  base: string,
  provider: Party,
  body: Record<string, unknown>,
): Promise<{ node_id: string; node_token: string }> {
  const r = await call(base, 'POST', '/v1/nodes/register', {
    token: provider.key,
    body: { region: 'eu-west', tier: 'standard', vcpus: 4, ...body },
  });
  if (r.status !== 201) throw new Error(`register node: ${r.status} ${JSON.stringify(r.body)}`);
  return { node_id: r.body.node_id, node_token: r.body.node_token };
}

export async function stake(base: string, provider: Party, node_id: string, amount_micro_usd: number) {
  const r = await call(base, 'POST', `/v1/nodes/${node_id}/stake`, { token: provider.key, body: { amount_micro_usd } });
  if (r.status !== 200) throw new Error(`stake: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A backend and an agent bound to the node by its token; resolves once the agent is attested and healthy. */
export async function nodeAgent(cp: ControlPlane, node_token: string, app = 'demo', agent_id?: string) {
  const backend = await startBackend();
  const agent = startAgent({
    control_ws: wsUrl(cp),
    backend_url: backend.url,
    app_name: app,
    ...(agent_id ? { agent_id } : {}),
    extra: { EE_NODE_TOKEN: node_token },
  });
  return { backend, agent };
}

type LinkOf<T> = T extends Iterable<infer L> ? L : never;

export const nodeLinks = (cp: ControlPlane, node_id: string): Array<LinkOf<ControlPlane['hub']['links']>> =>
  [...cp.hub.links].filter((l) => l.node_id === node_id && !l.closed);

/** Waits until every live agent of the node has reported passing health at the clock's current time. */
export async function freshHealth(cp: ControlPlane, clock: ManualClock, node_ids: readonly string[]): Promise<void> {
  await waitFor(
    () =>
      node_ids.every((n) => {
        const links = nodeLinks(cp, n);
        return links.length > 0 && links.every((l) => l.attested && l.last_pass_ms === clock.now() && !l.health_missed);
      }),
    10_000,
    `fresh health of ${node_ids.join(', ')} at ${new Date(clock.now()).toISOString()}`,
  );
}

/** Moves the clock by `ms` in steps short of the health timeout, waiting for fresh health at each step. */
export async function pass(
  cp: ControlPlane,
  clock: ManualClock,
  ms: number,
  node_ids: readonly string[],
  step = 25 * MIN,
): Promise<void> {
  let left = ms;
  while (left > 0) {
    const d = Math.min(step, left);
    clock.advance(d);
    left -= d;
    await freshHealth(cp, clock, node_ids);
  }
}

/** To the start of the next period, then one scheduler round (renewals, finalization, slashing). */
export async function nextPeriod(cp: ControlPlane, clock: ManualClock, node_ids: readonly string[]): Promise<void> {
  const period = cp.market.timing.period_ms;
  await pass(cp, clock, period - (clock.now() % period), node_ids);
  await cp.scheduler.tick();
}

export async function available(base: string, account: string): Promise<number> {
  const r = await call(base, 'GET', `/v1/balances/${account}`);
  if (r.status !== 200) throw new Error(`balance: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.available_micro_usd;
}

export const iso = (ms: number) => new Date(ms).toISOString();
