// A deployment's creation as one ledger operation: the market's lease (first period locked) on the first
// candidate still eligible under its row lock whose launcher has room beside the node's jobs and deployments,
// and the deployment row, committed together.
import type { ApplyContext, LedgerOp } from '../ledger-store/batch.js';
import { launcherRoom, type JobCandidate } from '../jobs/placing.js';
import { createLeaseOp, type LeaseResult, type MarketTiming } from '../market/ops.js';
import type { DeploymentsTable } from './store/schema.js';

/** Nothing retiring: the update finished or was refused. */
export const RETIRED = { retiring_image: null, retiring_sealed_env: null, retiring_env_key: null } as const;

export interface NewDeployment {
  id: string;
  lease_id: string;
  user_id: string;
  app: string;
  image: string;
  command: string[] | null;
  port: number;
  vcpus: number;
  memory_mib: number;
  periods: number | null;
  sealed_env: string | null;
  env_key: string | null;
}

export function createDeploymentOp<T>(
  d: NewDeployment,
  candidates: readonly JobCandidate[],
  t: MarketTiming,
  liveEligible: (node_id: string) => boolean,
  then: (r: LeaseResult, ctx: ApplyContext) => T,
): LedgerOp<T> {
  return createLeaseOp(
    { lease_id: d.lease_id, user_id: d.user_id, app_name: d.app, vcpus: d.vcpus, periods: d.periods, candidates },
    t,
    liveEligible,
    (r, ctx) => {
      if (r.ok) {
        const row: DeploymentsTable = {
          id: d.id,
          user_id: d.user_id,
          app: d.app,
          lease_id: d.lease_id,
          node_id: r.lease.node_id,
          image: d.image,
          command: d.command === null ? null : JSON.stringify(d.command),
          port: d.port,
          vcpus: d.vcpus,
          memory_mib: d.memory_mib,
          sealed_env: d.sealed_env,
          env_key: d.env_key,
          state: 'starting',
          reason: 'lease created; starting on the node',
          generation: 1,
          retiring_generation: null,
          ...RETIRED,
          image_id: null,
          image_digest: null,
          created_ms: ctx.now_ms,
          updated_ms: ctx.now_ms,
        };
        ctx.writes.after.push(async (tx) => {
          await tx
            .insertInto('deployments')
            .values(row)
            .onConflict((oc) => oc.column('id').doNothing())
            .execute();
        });
      }
      return then(r, ctx);
    },
    launcherRoom(candidates, d.vcpus, d.memory_mib),
  );
}
