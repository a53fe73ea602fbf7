// `ee jobs run | show | logs | cancel`: private jobs on node launchers (docs/workloads.md). `run` places the job,
// verifies the launcher's evidence over a nonce of ours, seals the env to its attested key, and (with --wait)
// prints the decrypted output. The result key is kept in ~/.easyenclave/jobs/{job}.jwk (mode 600) so `show` and
// `logs` can open the job's result and logs later; the control plane never holds anything it could read.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { JobResult } from '@easyenclave/sdk';
import { resolveConnection, type GlobalOptions } from '../client.js';
import { CliError, usageError } from '../errors.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields } from '../output.js';

type JobOptions = GlobalOptions & {
  env: string[];
  vcpus: string;
  memoryMib: string;
  maxRuntime: string;
  network?: boolean;
  wait?: boolean;
  retry?: boolean;
  outputFile?: string;
  output?: string;
  verify: boolean;
  json?: boolean;
  networkName?: string;
};

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const JOB_KEY_DIR = join(homedir(), '.easyenclave', 'jobs');

export function intOpt(v: string, name: string, min: number, max: number): number {
  if (!/^[0-9]{1,9}$/.test(v) || Number(v) < min || Number(v) > max)
    throw usageError(`${name} must be a whole number from ${min} to ${max}`);
  return Number(v);
}

/** `--env K=V` (the value on the command line) or `--env K` (taken from this process's environment). */
export function parseEnv(items: readonly string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    if (!ENV_NAME.test(name)) throw usageError(`--env ${name.slice(0, 40)}: not a variable name`);
    const value = eq < 0 ? env[name] : item.slice(eq + 1);
    if (value === undefined) throw usageError(`--env ${name}: not set in this environment`);
    out[name] = value;
  }
  return out;
}

export const stringifyJson = (v: unknown) =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));

export async function client(o: GlobalOptions & { networkName?: string }) {
  const { EasyEnclave } = await import('@easyenclave/sdk');
  const conn = resolveConnection(o);
  if (conn.api_key === undefined)
    throw usageError('jobs and deployments are paid by a user: give --api-key or EE_API_KEY');
  const network = o.networkName ?? process.env.EE_NETWORK;
  return new EasyEnclave({
    url: conn.base_url.toString().replace(/\/$/, ''),
    apiKey: conn.api_key,
    timeout_ms: conn.timeout_ms,
    ...(network !== undefined ? { network } : {}),
  });
}

async function saveKey(job_id: string, jwk: unknown): Promise<void> {
  mkdirSync(JOB_KEY_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(join(JOB_KEY_DIR, `${job_id}.jwk`), JSON.stringify(jwk), { mode: 0o600 });
}

async function loadKey(job_id: string) {
  const { recipientKeyFromJwk } = await import('@easyenclave/protocol/seal/index');
  try {
    return await recipientKeyFromJwk(JSON.parse(readFileSync(join(JOB_KEY_DIR, `${job_id}.jwk`), 'utf8')));
  } catch {
    return null;
  }
}

const jobId = (v: string): string => {
  if (!/^job_[0-9a-f]{20}$/.test(v)) throw usageError(`"${v.slice(0, 40)}" is not a job id (job_ and 20 hex)`);
  return v;
};

/** A result as JSON: stdout and stderr as text, the output file's bytes as base64. */
const resultJson = (r: JobResult | null) =>
  r && {
    ...r,
    stdout: Buffer.from(r.stdout).toString('utf8'),
    stderr: Buffer.from(r.stderr).toString('utf8'),
    output:
      r.output?.status === 'ok' ? { status: 'ok', base64: Buffer.from(r.output.bytes).toString('base64') } : r.output,
  };

/** Writes the job's output file (mode 600), or says why there is none. */
function writeOutput(r: JobResult, path: string): void {
  const o = r.output;
  if (o === null) throw new CliError('the job asked for no output file (--output-file)', 1, 'no_output');
  if (o.status === 'too_large')
    throw new CliError(`the output file was ${o.size_bytes} bytes, over the ${o.max_bytes}-byte limit`, 1, 'no_output');
  if (o.status !== 'ok') throw new CliError(`the job left no output file (${o.status})`, 1, 'no_output');
  writeFileSync(path, o.bytes, { mode: 0o600 });
}

const summary = (
  j: { job_id: string; state: string; reason: string; node_id: string; image: string } & Record<string, unknown>,
) =>
  formatFields([
    ['Job', j.job_id],
    ['State', `${j.state} (${j.reason})`],
    ['Node', j.node_id],
    ['Image', `${j.image}${j.image_id ? ` (${String(j.image_id)})` : ''}`],
    ['Exit code', j.exit_code as number | null],
    ['Billed', j.billed_vcpu_ms === null ? null : `${String(j.billed_vcpu_ms)} vCPU-ms`],
    ['Locked', `${String(j.locked_micro_usd)} micro-USD`],
    ['Settled', j.settled_micro_usd === null ? null : String(j.settled_micro_usd)],
    ['Refunded', j.refunded_micro_usd === null ? null : String(j.refunded_micro_usd)],
    ['Attempt', typeof j.attempt === 'number' && j.attempt > 1 ? `${j.attempt} (earlier ones refunded in full)` : null],
  ]);

export function registerJobs(program: Command): void {
  const jobs = program
    .command('jobs')
    .description('private jobs: containers on attested nodes, secrets sealed to them');

  const run = jobs
    .command('run <image> [command...]')
    .description("run a job: env sealed to the attested launcher, result sealed to this machine's key")
    .option(
      '--env <K=V|K>',
      'an env variable (K alone: its value from this environment); repeatable',
      (v: string, a: string[]) => [...a, v],
      [],
    )
    .option('--vcpus <n>', 'vCPUs', '1')
    .option('--memory-mib <n>', 'memory limit in MiB', '256')
    .option('--max-runtime <seconds>', 'stopped and billed at most this long', '60')
    .option('--network', 'give the job a network (none by default)')
    .option('--wait', 'wait for the end and print its output')
    .option('--output-file <name>', 'a file the job writes in /ee/output/ (at most 1 MiB), returned sealed')
    .option('--output <path>', 'with --wait: write the returned output file here')
    .option(
      '--retry',
      'if its node is lost mid-job: refunded and retried once on another node (with --wait, the env is sealed to the new launcher after verifying it)',
    )
    .option('--no-verify', "do not verify the launcher's evidence (trusts the control plane with the env)")
    .option('--network-name <name>', 'the network the launcher must attest on (env EE_NETWORK), e.g. sandbox-1');
  addConnectionOptions(run);
  addJsonOption(run);
  addExamples(run, [
    'SECRET=s3cret ee jobs run localhost/app:1 --env SECRET --wait -- sh -c \'printf %s "$SECRET" | sha256sum\'',
    'ee jobs run localhost/app:1 --vcpus 2 --max-runtime 600 -- ./batch.sh',
  ]);
  run.action(async (image: string, command: string[], _o: unknown, cmd: Command) => {
    const o = optsOf<JobOptions>(cmd);
    const env = parseEnv(o.env, process.env);
    const vcpus = intOpt(o.vcpus, '--vcpus', 1, 256);
    const memory_mib = intOpt(o.memoryMib, '--memory-mib', 16, 4_194_304);
    const max_runtime = intOpt(o.maxRuntime, '--max-runtime', 1, 7 * 24 * 3600);
    if (o.output !== undefined && (o.outputFile === undefined || !o.wait))
      throw usageError('--output needs --output-file (which file the job writes) and --wait');
    const ee = await client(o);
    const { generateRecipientKey } = await import('@easyenclave/protocol/seal/index');
    const { openJobResult } = await import('@easyenclave/sdk');
    const key = await generateRecipientKey(true);
    const s = await ee.submitPrivateJob({
      image,
      env,
      ...(command.length > 0 ? { command } : {}),
      vcpus,
      memory_mib,
      max_runtime,
      network: o.network === true,
      ...(o.retry === true ? { retry_on_node_loss: true } : {}),
      ...(o.outputFile !== undefined ? { output_file: o.outputFile } : {}),
      verify: o.verify,
      result_key: key,
    });
    await saveKey(s.job.job_id, await crypto.subtle.exportKey('jwk', key.keyPair.privateKey));
    if (!o.wait) {
      if (o.json) process.stdout.write(`${stringifyJson(s.job)}\n`);
      else process.stdout.write(`${s.job.job_id}\n`);
      return;
    }
    const out = await openJobResult(await ee.waitPrivateJob(s, { env, verify: o.verify }));
    const job = out.job;
    if (o.json) {
      process.stdout.write(
        `${stringifyJson({ job, usage_verified: out.usage_verified, result: resultJson(out.result) })}\n`,
      );
    } else {
      if (out.result) {
        process.stdout.write(Buffer.from(out.result.stdout));
        process.stderr.write(Buffer.from(out.result.stderr));
      }
      process.stderr.write(`${summary(job)}\n`);
    }
    if (job.state !== 'succeeded') throw new CliError(`job ${job.job_id} ${job.state}: ${job.reason}`, 1, 'job_failed');
    if (o.output !== undefined && out.result) writeOutput(out.result, o.output);
  });

  const show = jobs.command('show <job>').description("a job's state, money and (with its key here) its result");
  show.option('--output <path>', 'write the output file of its result here');
  addConnectionOptions(show);
  addJsonOption(show);
  show.action(async (id: string, _o: unknown, cmd: Command) => {
    const o = optsOf<JobOptions>(cmd);
    const ee = await client(o);
    const job = await ee.job(jobId(id));
    const key = await loadKey(job.job_id);
    const { openJobResult } = await import('@easyenclave/sdk');
    const out =
      key && job.result_sealed !== null
        ? await openJobResult({ job, result_key: key, receipt_public_key: null })
        : null;
    if (o.output !== undefined) {
      if (!out?.result) throw new CliError(`job ${job.job_id} has no result that opens here yet`, 1, 'no_result');
      writeOutput(out.result, o.output);
    }
    if (o.json) {
      process.stdout.write(`${stringifyJson({ job, result: resultJson(out?.result ?? null) })}\n`);
      return;
    }
    process.stdout.write(`${summary(job)}\n`);
    if (out?.result) {
      process.stdout.write('\nstdout:\n');
      process.stdout.write(Buffer.from(out.result.stdout));
    }
  });

  const logs = jobs.command('logs <job>').description("follow a running job's output (opened with its key here)");
  addConnectionOptions(logs);
  logs.action(async (id: string, _o: unknown, cmd: Command) => {
    const o = optsOf<JobOptions>(cmd);
    const ee = await client(o);
    const key = await loadKey(jobId(id));
    if (key === null)
      throw new CliError(`no key for ${id} in ${JOB_KEY_DIR}: its logs cannot be opened here`, 1, 'no_key');
    for await (const r of ee.jobLogs(id, key))
      (r.fd === 2 ? process.stderr : process.stdout).write(Buffer.from(r.data));
  });

  const cancel = jobs.command('cancel <job>').description('cancel a job (refunded in full before it starts)');
  addConnectionOptions(cancel);
  addJsonOption(cancel);
  cancel.action(async (id: string, _o: unknown, cmd: Command) => {
    const o = optsOf<JobOptions>(cmd);
    const job = await (await client(o)).cancelJob(jobId(id));
    process.stdout.write(o.json ? `${stringifyJson(job)}\n` : `${summary(job)}\n`);
  });
}
