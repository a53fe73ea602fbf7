// Placing a job (or a retried attempt) inside a ledger operation: `loadPlacing` reads and locks the candidate
// nodes and what they hold (prepare), `pickNode` takes the first candidate still active, staked, live and with
// room, and locks vCPUs × price × max runtime from the user toward its provider (apply). Lock order as the
// market's: node rows first. `launcherRoom` is the same room check for a deployment's lease.
import { createTransfers } from '../ledger/engine.js';
import { providerEarnings } from '../ledger/chart.js';
import { transferRefusal, type Refusal, type TransferRefusalCode } from '../ledger/refusal.js';
import type { TransferInput } from '../ledger/types.js';
import type { ApplyContext, ExtraWrites } from '../ledger-store/batch.js';
import { lockNodes, providerRequirements, stakeHeld, type LeaseRoom, type NodeRow } from '../market/ops.js';
import type { StoreDialect as Dialect } from '../store/index.js';
import type { Tx } from '../store/database.js';
import { usedByNode, type Used } from './capacity.js';
import { JOB_LOCK_SLACK_MS, jobLockAmount, jobLockId } from './money.js';
import type { JobsTable } from './store/schema.js';

/** A node that may take the job, as the shell saw it: routing order, and its launcher's reported capacity. */
export interface JobCandidate {
  id: string;
  provider: string;
  vcpus_total: number;
  memory_mib_total: number;
  /** The X25519 key of its launcher: the job's env must be sealed to exactly this key. */
  hpke_public_key: string;
}

/**
 * What earlier operations of the same group-commit batch did: their job rows are written only at the batch's
 * end, so a placement must add the capacity they took (or two jobs placed in one batch overcommit a node), and
 * an event must start from the row as the batch left it. One batch has one `writes` object.
 */
interface BatchView {
  placed: Map<string, { vcpus: number; memory_mib: number; seq: number }>;
  /** Deployments' leases placed earlier in the batch (their rows too are written at its end). */
  deployed: Map<string, Used>;
  rows: Map<string, JobsTable>;
}
const batches = new WeakMap<ExtraWrites, BatchView>();
export function batchView(writes: ExtraWrites): BatchView {
  let b = batches.get(writes);
  if (b === undefined) batches.set(writes, (b = { placed: new Map(), deployed: new Map(), rows: new Map() }));
  return b;
}

/** What a node holds: in the database, plus the jobs and deployments earlier operations of the batch placed. */
function heldInBatch(batch: BatchView, node_id: string, inDb: Used | undefined): Used {
  const u = inDb ?? { vcpus: 0, memory_mib: 0 };
  const j = batch.placed.get(node_id) ?? { vcpus: 0, memory_mib: 0 };
  const d = batch.deployed.get(node_id) ?? { vcpus: 0, memory_mib: 0 };
  return { vcpus: u.vcpus + j.vcpus + d.vcpus, memory_mib: u.memory_mib + j.memory_mib + d.memory_mib };
}

/**
 * A deployment's lease checks, under its candidates' row locks, the room its launcher has: what `usedByNode`
 * counts plus the batch's earlier placements, against the launcher's capacity as placement saw it.
 */
export function launcherRoom(candidates: readonly JobCandidate[], vcpus: number, memory_mib: number): LeaseRoom {
  const capacity = new Map(candidates.map((c) => [c.id, c]));
  let held = new Map<string, Used>();
  return {
    async load(tx, node_ids) {
      held = await usedByNode(tx, node_ids);
    },
    fits(ctx, node_id) {
      const c = capacity.get(node_id);
      const u = heldInBatch(batchView(ctx.writes), node_id, held.get(node_id));
      return c !== undefined && u.vcpus + vcpus <= c.vcpus_total && u.memory_mib + memory_mib <= c.memory_mib_total;
    },
    took(ctx, node_id) {
      const deployed = batchView(ctx.writes).deployed;
      const d = deployed.get(node_id) ?? { vcpus: 0, memory_mib: 0 };
      deployed.set(node_id, { vcpus: d.vcpus + vcpus, memory_mib: d.memory_mib + memory_mib });
    },
  };
}

/** The candidate nodes, locked, with their providers' stake requirements and what they hold. */
export interface Placing {
  nodes: Map<string, NodeRow>;
  required: Map<string, bigint>;
  used: Map<string, { vcpus: number; memory_mib: number; seq: number }>;
}

export async function loadPlacing(tx: Tx, d: Dialect, node_ids: readonly string[]): Promise<Placing> {
  const nodes = await lockNodes(tx, d, [...node_ids]);
  const required = await providerRequirements(
    tx,
    [...nodes.values()].map((n) => n.provider),
  );
  const used = new Map<string, { vcpus: number; memory_mib: number; seq: number }>();
  if (nodes.size === 0) return { nodes, required, used };
  const held = await usedByNode(tx, [...nodes.keys()]);
  const seqs = await tx
    .selectFrom('jobs')
    .select(['node_id', (eb) => eb.fn.max<number>('assignment_seq').as('seq')])
    .where('node_id', 'in', [...nodes.keys()])
    .groupBy('node_id')
    .execute();
  const seqOf = new Map(seqs.map((r) => [r.node_id, Number(r.seq)]));
  for (const id of nodes.keys())
    used.set(id, { ...(held.get(id) ?? { vcpus: 0, memory_mib: 0 }), seq: seqOf.get(id) ?? -1 });
  return { nodes, required, used };
}

/** What is placed: the job's size, its payer, and the launcher key its env is sealed to (null: any). */
export interface ToPlace {
  id: string;
  user_id: string;
  vcpus: number;
  memory_mib: number;
  max_runtime_ms: number;
  env_key: string | null;
  attempt: number;
}

export type Picked =
  | { ok: true; node: NodeRow; candidate: JobCandidate; lock: bigint; seq: number }
  | Refusal<TransferRefusalCode | 'no_node_with_capacity'>;

/** The first candidate that takes the job, its lock created; the capacity it takes is noted for the batch. */
export function pickNode(
  ctx: ApplyContext,
  j: ToPlace,
  candidates: readonly JobCandidate[],
  p: Placing,
  liveEligible: (node_id: string) => boolean,
): Picked {
  let refusal: Picked = {
    ok: false,
    code: 'no_node_with_capacity',
    message: `no eligible node has ${j.vcpus} vCPUs and ${j.memory_mib} MiB free`,
  };
  const batch = batchView(ctx.writes);
  for (const c of candidates) {
    const node = p.nodes.get(c.id);
    if (!node || node.status !== 'active' || !liveEligible(node.id)) continue;
    if (stakeHeld(ctx.state, node.provider) < (p.required.get(node.provider) ?? 0n)) continue;
    const inDb = p.used.get(node.id) ?? { vcpus: 0, memory_mib: 0, seq: -1 };
    const earlier = batch.placed.get(node.id);
    const u = { ...heldInBatch(batch, node.id, inDb), seq: earlier?.seq ?? inDb.seq };
    if (u.vcpus + j.vcpus > c.vcpus_total || u.memory_mib + j.memory_mib > c.memory_mib_total) continue;
    if (j.env_key !== null && j.env_key !== c.hpke_public_key) continue; // sealed to another launcher
    const lock = jobLockAmount(BigInt(node.price_micro), j.vcpus, j.max_runtime_ms);
    const input: TransferInput = {
      id: jobLockId(j.id, j.attempt),
      debit_account: j.user_id,
      credit_account: providerEarnings(node.provider),
      amount: lock,
      flags: { pending: true },
      timeout_ms: j.max_runtime_ms + JOB_LOCK_SLACK_MS,
      reference: `job:${j.id}`,
    };
    const [r] = createTransfers(ctx.state, [input], ctx.now_ms);
    if (r !== 'ok') {
      refusal = transferRefusal(r!);
      if (r === 'exceeds_credits') return refusal;
      continue;
    }
    const seq = u.seq + 1;
    batch.placed.set(node.id, {
      vcpus: (earlier?.vcpus ?? 0) + j.vcpus,
      memory_mib: (earlier?.memory_mib ?? 0) + j.memory_mib,
      seq,
    });
    return { ok: true, node, candidate: c, lock, seq };
  }
  return refusal;
}
