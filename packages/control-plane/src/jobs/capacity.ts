// What a node's launcher has given out: the vCPUs and memory of its unfinished jobs and of its deployments'
// containers. Placement (jobs and deployments) and a job's creation under the node's row lock both count
// both kinds, so a node running deployments is not handed jobs that do not fit beside them.
import type { Tx } from '../store/database.js';

/** States that hold capacity on a node. */
export const ACTIVE_STATES = ['queued', 'starting', 'running'] as const;
/** Deployment states whose containers hold capacity; an update runs two generations side by side. */
const DEPLOYMENT_HOLDING = ['starting', 'running', 'stopping'] as const;
const DEPLOYMENT_DOUBLE = 'updating';

export interface Used {
  vcpus: number;
  memory_mib: number;
}

/** vCPUs and memory held per node by unfinished jobs and by deployments. */
export async function usedByNode(db: Tx, ids: readonly string[]): Promise<Map<string, Used>> {
  const out = new Map<string, Used>();
  if (ids.length === 0) return out;
  const add = (node: string, v: number, m: number) => {
    const u = out.get(node) ?? { vcpus: 0, memory_mib: 0 };
    out.set(node, { vcpus: u.vcpus + v, memory_mib: u.memory_mib + m });
  };
  const jobs = await db
    .selectFrom('jobs')
    .select(['node_id', (eb) => eb.fn.sum<number>('vcpus').as('v'), (eb) => eb.fn.sum<number>('memory_mib').as('m')])
    .where('node_id', 'in', ids)
    .where('state', 'in', [...ACTIVE_STATES])
    .groupBy('node_id')
    .execute();
  for (const r of jobs) add(r.node_id, Number(r.v), Number(r.m));
  const deps = await db
    .selectFrom('deployments')
    .select(['node_id', 'state', 'vcpus', 'memory_mib'])
    .where('node_id', 'in', ids)
    .where('state', 'in', [...DEPLOYMENT_HOLDING, DEPLOYMENT_DOUBLE])
    .execute();
  for (const d of deps) {
    const k = d.state === DEPLOYMENT_DOUBLE ? 2 : 1;
    add(d.node_id, k * d.vcpus, k * d.memory_mib);
  }
  return out;
}
