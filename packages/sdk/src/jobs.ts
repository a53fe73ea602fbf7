// Private jobs (docs/workloads.md §2): `ee.runPrivateJob({ image, env, vcpus, max_runtime })`.
//
// 1. GET /v1/jobs/placement names the node and launcher the job would go to now.
// 2. The launcher's evidence is fetched over our own nonce and verified here (quote, keyset binding, policy:
//    the same check as `verifyApp`), unless verification is off; its attested X25519 key must be the one the
//    placement names.
// 3. The env is sealed (HPKE) to that key, bound to a job id we choose; the result and logs come back sealed
//    to a key we generate for this job. The control plane only ever holds ciphertext.
// 4. POST /v1/jobs, then GET /v1/jobs/{id} until it ends; the result is opened here, and the launcher's signed
//    usage record is checked against the attested Ed25519 key.
// Browser-safe (WebCrypto), except verification, which the client loads lazily (Node).
import { z } from 'zod';
import {
  jobEnvAad,
  jobLogsAad,
  jobResultAad,
  LAUNCHER_APP,
  USAGE_RECORD_DOMAIN,
  type JobResultPlain,
} from '@easyenclave/protocol/launcher';
import { generateRecipientKey, MessageOpener, open, seal, type RecipientKey } from '@easyenclave/protocol/seal/index';
import { verifyRecord } from '@easyenclave/protocol/signed-record';
import { mergeHeaders, post, principal, segment, get, type Auth } from './calls.js';
import { toHex } from './bytes.js';
import { AttestationError } from './errors.js';
import type { CallOptions, Transport } from './http.js';
import { callJson, MicroUsd } from './json.js';

export const PlacementSchema = z.looseObject({
  node_id: z.string(),
  launcher: z.looseObject({ app: z.string(), agent_id: z.string() }),
  hpke_public_key: z.string(),
  receipt_public_key: z.string(),
  price_per_vcpu_hour_micro_usd: MicroUsd,
  price_per_vcpu_hour_usd: z.string(),
});
export type Placement = z.infer<typeof PlacementSchema>;

export const JobSchema = z.looseObject({
  job_id: z.string(),
  node_id: z.string(),
  image: z.string(),
  state: z.enum(['queued', 'starting', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled']),
  reason: z.string(),
  history: z.array(z.looseObject({ state: z.string(), at: z.string(), reason: z.string() })),
  image_id: z.string().nullable(),
  image_digest: z.string().nullable(),
  exit_code: z.number().nullable(),
  billed_vcpu_ms: z.number().nullable(),
  locked_micro_usd: MicroUsd,
  settled_micro_usd: MicroUsd.nullable(),
  refunded_micro_usd: MicroUsd.nullable(),
  result_sealed: z.string().nullable(),
  usage: z.looseObject({ record: z.record(z.string(), z.unknown()), signature: z.string() }).nullable(),
  attempt: z.number().optional(),
  /** A retried job waits for its env sealed to this launcher (on its new node). */
  env_required: z
    .looseObject({
      launcher: z.looseObject({ app: z.string(), agent_id: z.string().nullable() }),
      hpke_public_key: z.string(),
    })
    .nullable()
    .optional(),
});
export type Job = z.infer<typeof JobSchema>;

export const ENDED = new Set(['succeeded', 'failed', 'timed_out', 'cancelled']);
/** The connection deadline of a log stream until its head arrives. */
export const LOG_STREAM_MAX_MS = 60_000;
/** How often runPrivateJob asks for the job's state while it runs. */
export const JOB_POLL_MS = 250;

export interface PrivateJobParams {
  image: string;
  /** Secret values: sealed to the attested launcher, never seen by the control plane. */
  env?: Record<string, string>;
  command?: string[];
  vcpus?: number;
  memory_mib?: number;
  /** Seconds. */
  max_runtime: number;
  network?: boolean;
  /** If its node is lost mid-job: refunded in full and retried once on another node (runPrivateJob seals the
   *  env again to the new launcher after verifying it). */
  retry_on_node_loss?: boolean;
  /** A file the job writes in /ee/output/ (at most 1 MiB): returned, decrypted, in `result.output`. */
  output_file?: string;
  /** Called with each state the job is seen in. */
  onState?: (job: Job) => void;
  /** The key the result and logs are sealed to (default: a fresh, non-extractable one for this job). */
  result_key?: RecipientKey;
}

/** The output file in a decrypted result: its bytes, or why there are none. */
export type JobOutput =
  | { status: 'ok'; bytes: Uint8Array }
  | { status: 'missing' | 'not_a_file' }
  | { status: 'too_large'; size_bytes: number; max_bytes: number };

/** The decrypted result. */
export interface JobResult extends Omit<JobResultPlain, 'stdout_tail' | 'stderr_tail' | 'output'> {
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** Null when the job asked for no output file. */
  output: JobOutput | null;
}

export interface PrivateJobOutcome {
  job: Job;
  /** Null when the job ended without a result (refused, lost, cancelled before it started). */
  result: JobResult | null;
  /** Whether the launcher's usage record was checked against its attested Ed25519 key. */
  usage_verified: boolean;
}

/** A job that was submitted: its id and the key its result and logs are sealed to. */
export interface SubmittedJob {
  job: Job;
  result_key: RecipientKey;
  /** The attested receipt key of its launcher (null when verification was off). */
  receipt_public_key: string | null;
}

const b64 = (bytes: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};
const unb64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

export function newJobId(): string {
  return `job_${toHex(crypto.getRandomValues(new Uint8Array(10)))}`;
}

export const placement = (t: Transport, auth: Auth, vcpus: number, memory_mib: number, o: CallOptions = {}) =>
  get(t, `/v1/jobs/placement?vcpus=${vcpus}&memory_mib=${memory_mib}`, principal(auth), o, PlacementSchema);

export const getJob = (t: Transport, auth: Auth, id: string, o: CallOptions = {}) =>
  get(t, `/v1/jobs/${segment(id, 'job id')}`, principal(auth), o, JobSchema);

export async function cancelJob(t: Transport, auth: Auth, id: string, o: CallOptions = {}): Promise<Job> {
  const path = `/v1/jobs/${segment(id, 'job id')}`;
  return (await callJson(t, { ...o, method: 'DELETE', path, headers: mergeHeaders(principal(auth), o) }, JobSchema))
    .data;
}

const sealEnv = (env: Record<string, string>, hpke_public_key: string, job_id: string) =>
  seal(hpke_public_key, new TextEncoder().encode(JSON.stringify(env)), jobEnvAad(job_id));

/** Seals the env of a retried job to its new launcher's key (its `env_required`) and hands it over. */
export async function resealJob(
  t: Transport,
  auth: Auth,
  job_id: string,
  env: Record<string, string>,
  hpke_public_key: string,
  o: CallOptions = {},
): Promise<Job> {
  const body = { sealed_env: b64(await sealEnv(env, hpke_public_key, job_id)), env_key: hpke_public_key };
  const path = `/v1/jobs/${segment(job_id, 'job id')}/env`;
  return (await callJson(t, { ...o, method: 'PUT', path, body, headers: mergeHeaders(principal(auth), o) }, JobSchema))
    .data;
}

/** Seals the env to `hpke_public_key` and submits the job. */
export async function submitJob(
  t: Transport,
  auth: Auth,
  p: PrivateJobParams,
  target: { hpke_public_key: string; receipt_public_key: string | null },
  o: CallOptions = {},
): Promise<SubmittedJob> {
  const job_id = newJobId();
  const result_key = p.result_key ?? (await generateRecipientKey());
  const env = p.env ?? {};
  const sealed = Object.keys(env).length === 0 ? null : await sealEnv(env, target.hpke_public_key, job_id);
  const body = {
    image: p.image,
    ...(p.command !== undefined ? { command: p.command } : {}),
    ...(sealed !== null ? { sealed_env: b64(sealed), env_key: target.hpke_public_key } : {}),
    job_id,
    result_key: toHex(result_key.publicKey),
    vcpus: p.vcpus ?? 1,
    memory_mib: p.memory_mib ?? 256,
    max_runtime_s: p.max_runtime,
    network: p.network ?? false,
    ...(p.retry_on_node_loss === true ? { retry_on_node_loss: true } : {}),
    ...(p.output_file !== undefined ? { output_file: p.output_file } : {}),
  };
  const job = await post(t, '/v1/jobs', body, principal(auth), o, JobSchema);
  return { job, result_key, receipt_public_key: target.receipt_public_key };
}

/** Polls a job until it ends; `onEnvRequired` is called when a retried job waits for its env (then polled on). */
export async function waitJob(
  t: Transport,
  auth: Auth,
  id: string,
  onState?: (job: Job) => void,
  o: CallOptions = {},
  onEnvRequired?: (job: Job) => Promise<void>,
): Promise<Job> {
  let last = '';
  for (;;) {
    const job = await getJob(t, auth, id, o);
    const seen = `${job.state}/${job.attempt ?? 1}`;
    if (seen !== last) onState?.(job);
    last = seen;
    if (ENDED.has(job.state)) return job;
    if (job.env_required && onEnvRequired) await onEnvRequired(job);
    await new Promise((r) => setTimeout(r, JOB_POLL_MS));
  }
}

/** Opens a job's sealed result and checks its usage record (when the receipt key is known). */
export async function openJobResult(s: {
  job: Job;
  result_key: RecipientKey;
  receipt_public_key: string | null;
}): Promise<PrivateJobOutcome> {
  const { job } = s;
  let result: JobResult | null = null;
  if (job.result_sealed !== null) {
    const plain = await open(s.result_key, unb64(job.result_sealed), jobResultAad(job.job_id));
    const r = JSON.parse(new TextDecoder().decode(plain)) as JobResultPlain;
    const { stdout_tail, stderr_tail, output, ...rest } = r;
    result = {
      ...rest,
      stdout: unb64(stdout_tail),
      stderr: unb64(stderr_tail),
      output: output == null ? null : output.status === 'ok' ? { status: 'ok', bytes: unb64(output.bytes) } : output,
    };
  }
  let usage_verified = false;
  if (job.usage !== null && s.receipt_public_key !== null) {
    usage_verified = await verifyRecord(
      s.receipt_public_key,
      job.usage.record,
      job.usage.signature,
      USAGE_RECORD_DOMAIN,
    );
    if (!usage_verified) throw new AttestationError(["the job's usage record is not signed by the attested launcher"]);
  }
  return { job, result, usage_verified };
}

/**
 * The job's stdout and stderr as they are written, opened here: yields `{ fd: 1 | 2, data }`. Ends when the job
 * ends; throws when the stream was tampered with or cut.
 */
export async function* jobLogs(
  t: Transport,
  auth: Auth,
  id: string,
  result_key: RecipientKey,
  o: CallOptions = {},
): AsyncGenerator<{ fd: 1 | 2; data: Uint8Array }> {
  const { res, deadline } = await t.send({
    ...o,
    method: 'GET',
    path: `/v1/jobs/${segment(id, 'job id')}/logs`,
    headers: mergeHeaders(principal(auth), o),
    timeout_ms: o.timeout_ms ?? LOG_STREAM_MAX_MS,
  });
  // The stream lasts as long as the job: no deadline on it (the caller's signal still stops it).
  deadline.stopTimer();
  if (res.status !== 200 || res.body === null) throw new Error(`logs: ${res.status} ${await res.text()}`);
  const opener = MessageOpener.request(result_key, { aad: jobLogsAad(id) });
  let pending = new Uint8Array(0);
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (const part of await opener.push(value)) {
      const merged = new Uint8Array(pending.length + part.length);
      merged.set(pending);
      merged.set(part, pending.length);
      pending = merged;
      while (pending.length >= 5) {
        const len = new DataView(pending.buffer, pending.byteOffset + 1, 4).getUint32(0);
        if (pending.length < 5 + len) break;
        yield { fd: pending[0] === 2 ? 2 : 1, data: pending.slice(5, 5 + len) };
        pending = pending.slice(5 + len);
      }
    }
  }
  opener.end();
  deadline.done();
}

export { LAUNCHER_APP };
