// A node launcher on a control plane, as the jobs and deployments end-to-end tests set it up: a provider with a
// staked two-vCPU node, a funded user, and the launcher run as `ee node run` (a subprocess on podman) that
// dials the tunnel with the node's token; ready once the control plane can place work on it.
import { randomBytes } from 'node:crypto';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { spawnEe, waitFor, wsUrl, type ProcessHandle } from './network.js';
import { PODMAN_TEST_ENV } from './podman.js';
import { tmpDir } from './tmp.js';
import { call } from '../ledger-http/client.js';
import { funded, registerNode, stake, type Party } from '../market/util.js';

/** vCPUs of the test node (and of its launcher). */
const NODE_VCPUS = 2;

export interface StakedNode {
  provider: Party;
  user: Party;
  node_id: string;
  node_token: string;
}

/** A provider ($500) with a node of NODE_VCPUS at `price` per vCPU-hour staked for a day, and a user ($50). */
export async function stakedNode(cp: ControlPlane, price_per_vcpu_hour_micro_usd: number): Promise<StakedNode> {
  const provider = await funded(cp.api_url, 'provider', 'P', '$500');
  const user = await funded(cp.api_url, 'user', 'U', '$50');
  const n = await registerNode(cp.api_url, provider, { price_per_vcpu_hour_micro_usd, vcpus: NODE_VCPUS });
  await stake(cp.api_url, provider, n.node_id, price_per_vcpu_hour_micro_usd * NODE_VCPUS * 24);
  return { provider, user, node_id: n.node_id, node_token: n.node_token };
}

/** One launcher's id and state directory, kept across its restarts. */
export class TestLauncher {
  readonly state_dir = tmpDir('ee-launcher-');
  constructor(readonly id = `e2e-${randomBytes(5).toString('hex')}`) {}

  /** Starts `ee node run` for the node of `node_token` on `cp` (sandbox-1, 1 GiB, health every second). */
  start(cp: ControlPlane, node_token: string): ProcessHandle {
    return spawnEe(['node', 'run'], {
      ...PODMAN_TEST_ENV,
      EE_CONTROL_WS: wsUrl(cp),
      EE_NODE_TOKEN: node_token,
      EE_NETWORK: 'sandbox-1',
      EE_LAUNCHER_ID: this.id,
      EE_LAUNCHER_STATE_DIR: this.state_dir,
      EE_AGENT_STATE_DIR: this.state_dir,
      EE_LAUNCHER_VCPUS: String(NODE_VCPUS),
      EE_LAUNCHER_MEMORY_MIB: '1024',
      EE_HEALTH_INTERVAL_SEC: '1',
      EE_LOG_LEVEL: 'warn',
    });
  }
}

/** Waits until the launcher is attested and the control plane places work on it (for `user`). */
export async function launcherPlaceable(cp: ControlPlane, user: Party): Promise<void> {
  await waitFor(
    async () => (await call(cp.api_url, 'GET', '/v1/jobs/placement', { token: user.key })).status === 200,
    60_000,
    'the launcher to be attested and placeable',
  );
}
