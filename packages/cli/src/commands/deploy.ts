// `ee deploy create | show | update | stop`: long-running apps on node launchers, paid by a lease
// (docs/workloads.md §3). `create` places the app, verifies the launcher's evidence over a nonce of ours, seals
// the env to its attested key and waits until the app serves through its agent.
import type { Command } from 'commander';
import type { GlobalOptions } from '../client.js';
import { CliError, usageError } from '../errors.js';
import { addConnectionOptions, addExamples, addJsonOption, optsOf } from '../options.js';
import { formatFields } from '../output.js';
import { client, intOpt, parseEnv, stringifyJson } from './jobs.js';

type DeployOptions = GlobalOptions & {
  env: string[];
  port: string;
  vcpus: string;
  memoryMib: string;
  periods?: string;
  verify: boolean;
  json?: boolean;
  networkName?: string;
};

const deploymentId = (v: string): string => {
  if (!/^dep_[0-9a-f]{20}$/.test(v)) throw usageError(`"${v.slice(0, 40)}" is not a deployment id (dep_ and 20 hex)`);
  return v;
};

interface Shown {
  deployment_id: string;
  app: string;
  state: string;
  reason: string;
  node_id: string;
  image: string;
  image_id: string | null;
  generation: number;
  lease: { lease_id: string; status: string } | null;
}

const summary = (d: Shown) =>
  formatFields([
    ['Deployment', d.deployment_id],
    ['App', d.app],
    ['State', `${d.state} (${d.reason})`],
    ['Node', d.node_id],
    ['Image', `${d.image}${d.image_id ? ` (${d.image_id})` : ''}`],
    ['Generation', d.generation],
    ['Lease', d.lease ? `${d.lease.lease_id} (${d.lease.status})` : null],
  ]);

function print(o: DeployOptions, d: Shown): void {
  process.stdout.write(o.json ? `${stringifyJson(d)}\n` : `${summary(d)}\n`);
  if (d.state === 'failed') throw new CliError(`deployment ${d.deployment_id} failed: ${d.reason}`, 1, 'failed');
}

export function registerDeploy(program: Command): void {
  const deploy = program
    .command('deploy')
    .description('deployments: long-running apps on attested nodes, paid by a lease');

  const create = deploy
    .command('create <app> <image> [command...]')
    .description('deploy an app: env sealed to the attested launcher; waits until it serves')
    .requiredOption('--port <port>', 'the container port the app listens on')
    .option(
      '--env <K=V|K>',
      'an env variable (K alone: its value from this environment); repeatable',
      (v: string, a: string[]) => [...a, v],
      [],
    )
    .option('--vcpus <n>', 'vCPUs', '1')
    .option('--memory-mib <n>', 'memory limit in MiB', '256')
    .option('--periods <n>', 'lease periods to run (default: until stopped or unfunded)')
    .option('--no-verify', "do not verify the launcher's evidence (trusts the control plane with the env)")
    .option('--network-name <name>', 'the network the launcher must attest on (env EE_NETWORK), e.g. sandbox-1');
  addConnectionOptions(create);
  addJsonOption(create);
  addExamples(create, ['ee deploy create web localhost/web:1 --port 8080 --env SECRET -- httpd -f -p 8080']);
  create.action(async (app: string, image: string, command: string[], _o: unknown, cmd: Command) => {
    const o = optsOf<DeployOptions>(cmd);
    const d = await (
      await client(o)
    ).deploy({
      app,
      image,
      ...(command.length > 0 ? { command } : {}),
      env: parseEnv(o.env, process.env),
      port: intOpt(o.port, '--port', 1, 65535),
      vcpus: intOpt(o.vcpus, '--vcpus', 1, 256),
      memory_mib: intOpt(o.memoryMib, '--memory-mib', 16, 4_194_304),
      ...(o.periods !== undefined ? { periods: intOpt(o.periods, '--periods', 1, 100_000) } : {}),
      verify: o.verify,
    });
    print(o, d);
  });

  const show = deploy.command('show <deployment>').description("a deployment's node, image, state and lease");
  addConnectionOptions(show);
  addJsonOption(show);
  show.action(async (id: string, _o: unknown, cmd: Command) => {
    const o = optsOf<DeployOptions>(cmd);
    print(o, await (await client(o)).deployment(deploymentId(id)));
  });

  const update = deploy
    .command('update <deployment> [image]')
    .description('rolling restart onto a new image and/or a new env (sealed to its launcher); waits until it serves')
    .option(
      '--env <K=V|K>',
      'the new env, whole (K alone: its value from this environment); repeatable; omitted: the env carries over',
      (v: string, a: string[]) => [...a, v],
      [],
    )
    .option('--no-verify', "do not verify the launcher's evidence (trusts the control plane with the env)")
    .option('--network-name <name>', 'the network the launcher must attest on (env EE_NETWORK), e.g. sandbox-1');
  addConnectionOptions(update);
  addJsonOption(update);
  addExamples(update, [
    'ee deploy update dep_0123456789abcdef0123 localhost/web:2',
    'ee deploy update dep_0123456789abcdef0123 --env SECRET',
  ]);
  update.action(async (id: string, image: string | undefined, _o: unknown, cmd: Command) => {
    const o = optsOf<DeployOptions>(cmd);
    if (image === undefined && o.env.length === 0) throw usageError('give a new image, --env, or both');
    const env = o.env.length > 0 ? { env: parseEnv(o.env, process.env), verify: o.verify } : {};
    print(
      o,
      await (await client(o)).updateDeployment(deploymentId(id), { ...(image !== undefined ? { image } : {}), ...env }),
    );
  });

  const stop = deploy.command('stop <deployment>').description('stop it (container and agent) and end its lease');
  addConnectionOptions(stop);
  addJsonOption(stop);
  stop.action(async (id: string, _o: unknown, cmd: Command) => {
    const o = optsOf<DeployOptions>(cmd);
    print(o, await (await client(o)).stopDeployment(deploymentId(id)));
  });
}
