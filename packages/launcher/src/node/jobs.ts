// The launcher's jobs: assignments from the control plane become containers (through the ContainerRuntime),
// their ends become a result sealed to the client's key and a usage record signed with the launcher's attested
// Ed25519 key. The sealed env is opened here, inside the TD, and handed to the runtime; a sealed env that does
// not open (tampered, sealed to another key or for another job) is refused before anything is created.
//
// What the launcher keeps on disk per job is public: the assignment's job id, sequence and the client's public
// key (`{state dir}/jobs/{id}.json`), so a restarted launcher seals a reconciled job's result to the right key.
// The control plane acknowledges a reported end; only then are the container and that file removed.
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AgentKeys } from '@easyenclave/attestation';
import { rawPublicKey } from '@easyenclave/attestation';
import {
  jobEnvAad,
  jobLogsAad,
  jobResultAad,
  JOB_ID_RE,
  type Assignment,
  type JobResultPlain,
  type LauncherJob,
  type LauncherState,
  type UsageRecord,
  USAGE_RECORD_DOMAIN,
} from '@easyenclave/protocol/launcher';
import {
  MessageSealer,
  open,
  recipientKeyFromJwk,
  seal,
  type CryptoKey,
  type RecipientKey,
} from '@easyenclave/protocol/seal/index';
import { importSigningKey, signRecord } from '@easyenclave/protocol/signed-record';
import { z } from 'zod';
import { RuntimeError } from '../errors.js';
import { MAX_ENV_TOTAL_BYTES } from '../limits.js';
import { jobOutput, withOutput } from './job-output.js';
import type { ContainerRuntime, Workload, WorkloadResult } from '../runtime.js';

/** Why an assignment was refused, as the control plane records it (a code and a few words). */
export class AssignmentRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const Meta = z.strictObject({
  job_id: z.string().regex(JOB_ID_RE),
  assignment_seq: z.number().int().nonnegative(),
  result_key: z.string().regex(/^[0-9a-f]{64}$/),
});
type Meta = z.infer<typeof Meta>;

const EnvObject = z.record(z.string(), z.string());

interface Tracked {
  meta: Meta;
  workload: Workload;
  /** Set once the end is sealed and signed; served until the control plane acknowledges it. */
  ended: LauncherJob | null;
}

const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64');

export class LauncherJobs {
  private readonly jobs = new Map<string, Tracked>();
  /** Assignments being started (their container may not exist yet); a repeated assignment waits for the same. */
  private readonly starting = new Map<string, Promise<LauncherJob>>();
  private boot_seq = 0;
  private recipient: Promise<RecipientKey> | null = null;
  private signer: Promise<CryptoKey> | null = null;
  private readonly receipt_hex: string;

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly keys: AgentKeys,
    private readonly state_dir: string,
    private readonly launcher_id: string,
    private readonly log: Logger,
  ) {
    this.receipt_hex = rawPublicKey(keys.receipt.publicKey).toString('hex');
  }

  private get dir(): string {
    return join(this.state_dir, 'jobs');
  }

  private recipientKey(): Promise<RecipientKey> {
    this.recipient ??= recipientKeyFromJwk(this.keys.hpke.privateKey.export({ format: 'jwk' }));
    return this.recipient;
  }

  private signingKey(): Promise<CryptoKey> {
    this.signer ??= importSigningKey(this.keys.receipt.privateKey.export({ format: 'jwk' }));
    return this.signer;
  }

  /** After a restart: the runtime's reconciled jobs, with the assignment facts kept on disk. */
  async reconcile(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.runtime.reconcile();
    const files = (await readdir(this.dir)).filter((f) => f.endsWith('.json'));
    for (const f of files) {
      const id = f.slice(0, -5);
      const w = this.runtime.get(id);
      if (!w || w.kind !== 'job') {
        await rm(join(this.dir, f), { force: true }); // its container is gone: nothing to report
        continue;
      }
      let meta: Meta;
      try {
        meta = Meta.parse(JSON.parse(await readFile(join(this.dir, f), 'utf8')));
      } catch (err) {
        this.log.warn({ err, job_id: id }, 'launcher: unreadable job file; the job is left to the control plane');
        continue;
      }
      this.track(meta, w);
    }
  }

  /** Starts an assignment (idempotent: an assignment already known answers its current view). */
  assign(a: Assignment): Promise<LauncherJob> {
    const known = this.jobs.get(a.job_id);
    if (known) return Promise.resolve(this.view(known));
    let p = this.starting.get(a.job_id);
    if (p === undefined) {
      p = this.startAssignment(a).finally(() => this.starting.delete(a.job_id));
      this.starting.set(a.job_id, p);
    }
    return p;
  }

  private async startAssignment(a: Assignment): Promise<LauncherJob> {
    const env = a.sealed_env === null ? {} : await this.openEnv(a);
    const meta: Meta = { job_id: a.job_id, assignment_seq: a.assignment_seq, result_key: a.result_key };
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFile(join(this.dir, `${a.job_id}.json`), JSON.stringify(meta), { mode: 0o600 });
    let w: Workload;
    try {
      w = await this.runtime.start({
        workload_id: a.job_id,
        kind: 'job',
        assignment_seq: a.assignment_seq,
        image: a.image,
        ...(a.command !== null ? { command: a.command } : {}),
        env,
        vcpus: a.vcpus,
        memory_mib: a.memory_mib,
        max_runtime_ms: a.max_runtime_ms,
        network: a.network,
        ...(a.output_file !== undefined ? { output_file: a.output_file } : {}),
      });
    } catch (err) {
      await rm(join(this.dir, `${a.job_id}.json`), { force: true });
      if (err instanceof RuntimeError) throw new AssignmentRefused(err.code, err.message);
      throw err;
    }
    return this.view(this.track(meta, w));
  }

  private openEnv(a: Assignment): Promise<Record<string, string>> {
    return this.openSealedEnv(a.sealed_env!, jobEnvAad(a.job_id));
  }

  /** Opens an env sealed to this boot's attested key with `aad` (jobs and deployments alike). */
  async openSealedEnv(sealed_b64: string, aad: Uint8Array): Promise<Record<string, string>> {
    let plain: Uint8Array;
    try {
      plain = await open(await this.recipientKey(), Buffer.from(sealed_b64, 'base64'), aad, MAX_ENV_TOTAL_BYTES);
    } catch (err) {
      throw new AssignmentRefused('env_refused', `the sealed env does not open: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(plain).toString('utf8'));
    } finally {
      plain.fill(0);
    }
    const r = EnvObject.safeParse(parsed);
    if (!r.success) throw new AssignmentRefused('env_refused', 'the sealed env is not a JSON object of strings');
    return r.data;
  }

  private track(meta: Meta, workload: Workload): Tracked {
    const t: Tracked = { meta, workload, ended: null };
    this.jobs.set(meta.job_id, t);
    workload
      .result()
      .then(async (r) => {
        t.ended = await this.report(t, r);
      })
      .catch((err: unknown) => this.log.error({ err, job_id: meta.job_id }, 'launcher: collecting a result failed'));
    return t;
  }

  /** The end of a job: its result sealed to the client, its usage signed. */
  private async report(t: Tracked, workload_result: WorkloadResult): Promise<LauncherJob> {
    const output = jobOutput(workload_result.output);
    const r = { ...workload_result, ...withOutput(workload_result, output) };
    const plain: JobResultPlain = {
      job_id: t.meta.job_id,
      state: r.state,
      reason: r.reason,
      exit_code: r.exit_code,
      oom_killed: r.oom_killed,
      timed_out: r.timed_out,
      image: r.image,
      started_at_ms: r.started_at_ms,
      finished_at_ms: r.finished_at_ms,
      billed_vcpu_ms: r.billed_vcpu_ms,
      stdout_tail: r.stdout_tail.toString('base64'),
      stderr_tail: r.stderr_tail.toString('base64'),
      stdout_truncated: r.stdout_truncated,
      stderr_truncated: r.stderr_truncated,
      output,
    };
    const sealed = await seal(
      t.meta.result_key,
      new TextEncoder().encode(JSON.stringify(plain)),
      jobResultAad(t.meta.job_id),
    );
    const usage: UsageRecord = {
      job_id: t.meta.job_id,
      launcher_id: this.launcher_id,
      image_id: r.image.id,
      image_digest: r.image.digest,
      started_at_ms: r.started_at_ms,
      finished_at_ms: r.finished_at_ms,
      vcpus: r.vcpus,
      vcpu_ms: r.billed_vcpu_ms,
      exit_code: r.exit_code,
      state: r.state,
      reason: r.reason.slice(0, 256),
      boot_seq: ++this.boot_seq,
      receipt_public_key: this.receipt_hex,
    };
    const usage_signature = await signRecord(await this.signingKey(), usage, USAGE_RECORD_DOMAIN);
    this.log.info({ job_id: t.meta.job_id, state: r.state, vcpu_ms: r.billed_vcpu_ms }, 'launcher: job ended');
    return {
      job_id: t.meta.job_id,
      state: r.state,
      started_at_ms: r.started_at_ms,
      image_id: r.image.id,
      image_digest: r.image.digest,
      result_sealed: b64(sealed),
      usage,
      usage_signature,
    };
  }

  private view(t: Tracked): LauncherJob {
    if (t.ended) return t.ended;
    const w = t.workload;
    return {
      job_id: t.meta.job_id,
      state: w.running ? 'running' : 'starting',
      started_at_ms: w.started_at_ms,
      image_id: w.image.id,
      image_digest: w.image.digest,
      result_sealed: null,
      usage: null,
      usage_signature: null,
    };
  }

  state(): LauncherState {
    const c = this.runtime.capacity();
    return {
      launcher_id: this.launcher_id,
      capacity: {
        vcpus_total: c.total.vcpus,
        memory_mib_total: c.total.memory_mib,
        vcpus_free: c.free.vcpus,
        memory_mib_free: c.free.memory_mib,
      },
      jobs: [
        ...[...this.jobs.values()].map((t) => this.view(t)),
        // Assignments still being started are reported too: the control plane must not take them for lost.
        ...[...this.starting.keys()]
          .filter((id) => !this.jobs.has(id))
          .map((job_id): LauncherJob => ({
            job_id,
            state: 'starting',
            started_at_ms: null,
            image_id: null,
            image_digest: null,
            result_sealed: null,
            usage: null,
            usage_signature: null,
          })),
      ],
    };
  }

  /** Stops a job's container (its end reports `cancelled`); false when the job is unknown. */
  async cancel(job_id: string): Promise<boolean> {
    const t = this.jobs.get(job_id);
    if (!t) return false;
    await t.workload.cancel();
    return true;
  }

  /** The control plane stored the job's end: the container and the job's file go. */
  async ack(job_id: string): Promise<boolean> {
    const t = this.jobs.get(job_id);
    if (!t || !t.ended) return false;
    await t.workload.remove();
    await rm(join(this.dir, `${job_id}.json`), { force: true });
    this.jobs.delete(job_id);
    return true;
  }

  /**
   * The job's stdout and stderr from its start, following until it exits, as ONE message sealed to the client's
   * key: records of [1 byte: 1 stdout, 2 stderr][4 bytes big-endian length][bytes]. Null when the job is unknown.
   */
  async *logs(job_id: string): AsyncGenerator<Uint8Array> {
    const t = this.jobs.get(job_id);
    if (!t) return;
    const sealer = await MessageSealer.request(t.meta.result_key, { aad: jobLogsAad(job_id), meta: null });
    const stream = t.workload.logs();
    const queue: Buffer[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    const push = (fd: number) => (chunk: Buffer) => {
      const head = Buffer.alloc(5);
      head[0] = fd;
      head.writeUInt32BE(chunk.length, 1);
      queue.push(head, chunk);
      wake?.();
    };
    stream.stdout.on('data', push(1));
    stream.stderr.on('data', push(2));
    void stream.done.then(() => {
      done = true;
      wake?.();
    });
    try {
      yield* await sealer.start();
      while (true) {
        if (queue.length > 0) {
          const chunk = Buffer.concat(queue.splice(0));
          for (const part of await sealer.write(chunk)) yield part;
          continue;
        }
        if (done) break;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
      for (const part of await sealer.end()) yield part;
    } finally {
      stream.close();
    }
  }

  async close(): Promise<void> {
    this.jobs.clear();
  }
}
