// Deployments (docs/workloads.md §3): `ee.deploy({ app, image, env, port, vcpus, periods })`.
// The env is sealed (HPKE) to the attested launcher's key, bound to a deployment id chosen here, as a job's is;
// the control plane creates a lease on that launcher's node and the launcher runs the container and an agent
// for it. `deploy` waits until the app serves (its agent attested and routable).
import { z } from 'zod';
import { deploymentEnvAad } from '@easyenclave/protocol/launcher';
import { seal } from '@easyenclave/protocol/seal/index';
import { mergeHeaders, post, principal, segment, get, type Auth } from './calls.js';
import { toHex } from './bytes.js';
import type { CallOptions, Transport } from './http.js';
import { callJson } from './json.js';

export const DeploymentSchema = z.looseObject({
  deployment_id: z.string(),
  app: z.string(),
  node_id: z.string(),
  image: z.string(),
  image_id: z.string().nullable(),
  image_digest: z.string().nullable(),
  port: z.number(),
  state: z.enum(['starting', 'running', 'updating', 'stopping', 'stopped', 'failed']),
  reason: z.string(),
  generation: z.number(),
  lease: z.looseObject({ lease_id: z.string(), status: z.string() }).nullable(),
  /** Its node's launcher while connected: a new env is sealed to its key (after verifying it). */
  launcher: z.looseObject({ app: z.string(), agent_id: z.string(), hpke_public_key: z.string() }).nullable().optional(),
});
export type Deployment = z.infer<typeof DeploymentSchema>;

/** How often `deploy` and `waitDeployment` ask for the state. */
export const DEPLOYMENT_POLL_MS = 250;

export interface DeployParams {
  app: string;
  image: string;
  /** Secret values: sealed to the attested launcher, never seen by the control plane. */
  env?: Record<string, string>;
  command?: string[];
  port: number;
  vcpus?: number;
  memory_mib?: number;
  /** Lease periods (the prorated first one included); omitted = until stopped or unfunded. */
  periods?: number;
}

export function newDeploymentId(): string {
  return `dep_${toHex(crypto.getRandomValues(new Uint8Array(10)))}`;
}

const b64 = (bytes: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};

/** The env sealed to a launcher's key for this deployment (base64). */
export const sealDeploymentEnv = async (env: Record<string, string>, key: string, id: string) =>
  b64(await seal(key, new TextEncoder().encode(JSON.stringify(env)), deploymentEnvAad(id)));

const sealEnv = async (env: Record<string, string> | undefined, key: string, id: string) =>
  env === undefined || Object.keys(env).length === 0 ? null : sealDeploymentEnv(env, key, id);

/** Seals the env to `hpke_public_key` and creates the deployment (it starts on that launcher's node). */
export async function createDeployment(
  t: Transport,
  auth: Auth,
  p: DeployParams,
  hpke_public_key: string,
  o: CallOptions = {},
): Promise<Deployment> {
  const deployment_id = newDeploymentId();
  const sealed = await sealEnv(p.env, hpke_public_key, deployment_id);
  const body = {
    app: p.app,
    image: p.image,
    ...(p.command !== undefined ? { command: p.command } : {}),
    port: p.port,
    deployment_id,
    ...(sealed !== null ? { sealed_env: sealed, env_key: hpke_public_key } : {}),
    vcpus: p.vcpus ?? 1,
    memory_mib: p.memory_mib ?? 256,
    ...(p.periods !== undefined ? { periods: p.periods } : {}),
  };
  return post(t, '/v1/deployments', body, principal(auth), o, DeploymentSchema);
}

export const getDeployment = (t: Transport, auth: Auth, id: string, o: CallOptions = {}) =>
  get(t, `/v1/deployments/${segment(id, 'deployment id')}`, principal(auth), o, DeploymentSchema);

async function send(t: Transport, auth: Auth, method: string, id: string, body: unknown, o: CallOptions) {
  const path = `/v1/deployments/${segment(id, 'deployment id')}`;
  return (
    await callJson(
      t,
      { ...o, method, path, ...(body !== undefined ? { body } : {}), headers: mergeHeaders(principal(auth), o) },
      DeploymentSchema,
    )
  ).data;
}

/** What an update changes: the image, the env (sealed to the deployment's launcher), or both. */
export interface DeploymentPatch {
  image?: string;
  sealed_env?: string;
  env_key?: string;
}

/** A new image and/or env (what is not given carries over): a rolling restart onto it. */
export const updateDeployment = (t: Transport, auth: Auth, id: string, patch: DeploymentPatch, o: CallOptions = {}) =>
  send(t, auth, 'PATCH', id, patch, o);

export const stopDeployment = (t: Transport, auth: Auth, id: string, o: CallOptions = {}) =>
  send(t, auth, 'DELETE', id, undefined, o);

/** Polls until the deployment is in one of `states` (or has ended, which also returns). */
export async function waitDeployment(
  t: Transport,
  auth: Auth,
  id: string,
  states: readonly Deployment['state'][],
  o: CallOptions = {},
): Promise<Deployment> {
  for (;;) {
    const d = await getDeployment(t, auth, id, o);
    if (states.includes(d.state) || d.state === 'stopped' || d.state === 'failed') return d;
    await new Promise((r) => setTimeout(r, DEPLOYMENT_POLL_MS));
  }
}
