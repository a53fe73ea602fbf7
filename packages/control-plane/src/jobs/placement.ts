// Placement: the cheapest eligible nodes (the market's routing: active, staked, attested and healthy launcher,
// lowest effective price) whose launcher has room for a workload next to what the node's jobs and deployments
// already hold (capacity.ts). Jobs and deployments use it; a job's retry excludes the node it was lost on.
import { LAUNCHER_APP } from '@easyenclave/protocol/launcher';
import type { Market } from '../market/market.js';
import type { LauncherRegistry, LauncherView } from '../launchers/registry.js';
import type { Db } from '../store/database.js';
import { usedByNode } from './capacity.js';
import type { JobCandidate } from './placing.js';

/** Candidate nodes a job creation re-checks under their row locks, best first. */
export const MAX_JOB_CANDIDATES = 16;

export interface Placement {
  node_id: string;
  agent_id: string;
  hpke_public_key: string;
  receipt_public_key: string;
  price_micro: number;
}

export type PlacementResult =
  | { ok: true; placements: Placement[]; candidates: JobCandidate[] }
  | { ok: false; code: 'job_too_large' | 'no_node_with_capacity'; message: string };

export interface PlacementDeps {
  db: Db;
  market: Market;
  registry: LauncherRegistry;
}

/** Eligible nodes with a launcher that can take `vcpus` and `memory_mib` now, cheapest effective price first. */
export async function place(
  deps: PlacementDeps,
  vcpus: number,
  memory_mib: number,
  exclude: ReadonlySet<string> = new Set(),
): Promise<PlacementResult> {
  const ranked = (await deps.market.candidates(LAUNCHER_APP)).filter((n) => !exclude.has(n.id));
  const views = ranked
    .map((n) => ({ n, v: deps.registry.view(n.id) }))
    .filter((x): x is { n: (typeof ranked)[number]; v: LauncherView } => x.v !== null);
  if (!views.some(({ v }) => v.state.capacity.vcpus_total >= vcpus && v.state.capacity.memory_mib_total >= memory_mib))
    return {
      ok: false,
      code: 'job_too_large',
      message:
        views.length === 0
          ? 'no eligible node has a launcher connected'
          : `no eligible node offers ${vcpus} vCPUs and ${memory_mib} MiB (the largest offers ${Math.max(...views.map(({ v }) => v.state.capacity.vcpus_total))} vCPUs)`,
    };
  const used = await usedByNode(
    deps.db,
    views.map(({ n }) => n.id),
  );
  const placements: Placement[] = [];
  const candidates: JobCandidate[] = [];
  for (const { n, v } of views) {
    const u = used.get(n.id) ?? { vcpus: 0, memory_mib: 0 };
    const c = v.state.capacity;
    if (u.vcpus + vcpus > c.vcpus_total || u.memory_mib + memory_mib > c.memory_mib_total) continue;
    placements.push({
      node_id: n.id,
      agent_id: v.agent_id,
      hpke_public_key: v.hpke_public_key,
      receipt_public_key: v.receipt_public_key,
      price_micro: n.price_micro,
    });
    candidates.push({
      id: n.id,
      provider: n.provider,
      vcpus_total: c.vcpus_total,
      memory_mib_total: c.memory_mib_total,
      hpke_public_key: v.hpke_public_key,
    });
    if (candidates.length >= MAX_JOB_CANDIDATES) break;
  }
  if (candidates.length === 0)
    return {
      ok: false,
      code: 'no_node_with_capacity',
      message: `no eligible node has ${vcpus} vCPUs and ${memory_mib} MiB free now`,
    };
  return { ok: true, placements, candidates };
}
