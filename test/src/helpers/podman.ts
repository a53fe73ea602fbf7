// Real podman for the launcher tests. This machine needs `--runtime runc` (crun refuses its hybrid cgroup
// layout) and explicit rlimits (the defaults are refused): they are the launcher's settings, given here from
// TEST_PODMAN_ENV (override with EE_TEST_CONTAINER_GLOBAL_ARGS / EE_TEST_CONTAINER_RUN_ARGS). Without podman
// the tests skip with a warning, except under CI or EE_REQUIRE_PODMAN=1, where they fail — like PostgreSQL.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  PodmanCli,
  PodmanRuntime,
  loadLauncherConfig,
  type LauncherConfig,
  type WorkloadSpecInput,
} from '@easyenclave/launcher';
import { TEST_PODMAN_ENV, ensureTestImage } from '@easyenclave/launcher/testing/test-image';
import { onCleanup, quietLogger } from './network.js';
import { tmpDir } from './tmp.js';

export const PODMAN_TEST_ENV = TEST_PODMAN_ENV;

/** The environment of `ee node run` on the sandbox network as the jobs tests run it: 2 vCPUs, 1 GiB. */
export function testLauncherEnv(control_ws: string, node_token: string, launcher_id: string, state_dir: string) {
  return {
    ...PODMAN_TEST_ENV,
    EE_CONTROL_WS: control_ws,
    EE_NODE_TOKEN: node_token,
    EE_NETWORK: 'sandbox-1',
    EE_LAUNCHER_ID: launcher_id,
    EE_LAUNCHER_STATE_DIR: state_dir,
    EE_AGENT_STATE_DIR: state_dir,
    EE_LAUNCHER_VCPUS: '2',
    EE_LAUNCHER_MEMORY_MIB: '1024',
    EE_HEALTH_INTERVAL_SEC: '1',
    EE_LOG_LEVEL: 'warn',
  };
}

/** A suite that hangs (a lost container exit) fails after this instead of blocking the run. */
export const PODMAN_SUITE_TIMEOUT_MS = 10 * 60_000;

export function podmanRequired(): boolean {
  return Boolean(process.env.CI) || process.env.EE_REQUIRE_PODMAN === '1';
}

/** For `describe(name, { skip }, ...)`: false when podman answers; a loud skip, or a throw under CI. */
export function podmanSkipReason(): false | string {
  const r = spawnSync(PODMAN_TEST_ENV.EE_CONTAINER_RUNTIME, ['version', '--format', '{{.Client.Version}}'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status === 0) return false;
  const msg =
    r.error !== undefined
      ? `${PODMAN_TEST_ENV.EE_CONTAINER_RUNTIME} is not installed (apt-get install podman runc slirp4netns busybox-static)`
      : `${PODMAN_TEST_ENV.EE_CONTAINER_RUNTIME} version failed: ${(r.stderr ?? '').trim()}`;
  if (podmanRequired()) throw new Error(`${msg}; required because CI or EE_REQUIRE_PODMAN=1 is set`);
  console.warn(`SKIPPING podman tests: ${msg}`);
  return `SKIPPED: ${msg}`;
}

/** A launcher config of its own (state dir, launcher id) with this machine's podman settings. */
export function testLauncherConfig(extra: Record<string, string> = {}): LauncherConfig {
  return loadLauncherConfig({
    ...PODMAN_TEST_ENV,
    EE_LAUNCHER_STATE_DIR: tmpDir('ee-launcher-'),
    EE_LAUNCHER_ID: `test-${randomBytes(6).toString('hex')}`,
    EE_LOG_LEVEL: 'silent',
    ...extra,
  });
}

export function testCli(): PodmanCli {
  const c = testLauncherConfig();
  return new PodmanCli({ command: c.container_runtime, global_args: c.container_global_args });
}

/** Opens a runtime; at cleanup it is closed and every container with its launcher label is removed. */
export async function openRuntime(config: LauncherConfig = testLauncherConfig()): Promise<PodmanRuntime> {
  const rt = await PodmanRuntime.open(config, { logger: quietLogger() });
  onCleanup(async () => {
    await rt.close();
    await removeContainersOf(config);
  });
  return rt;
}

export async function removeContainersOf(config: LauncherConfig): Promise<void> {
  const cli = new PodmanCli({ command: config.container_runtime, global_args: config.container_global_args });
  const ids = (await cli.ok(['ps', '--all', '--quiet', `--filter=label=ee.launcher=${config.launcher_id}`]))
    .toString()
    .split('\n')
    .filter((l) => /^[0-9a-f]+$/.test(l));
  if (ids.length > 0) await cli.call(['rm', '--force', '--time=0', '--', ...ids]);
}

let image: Promise<string> | null = null;
/** The local busybox test image (built once per machine, see packages/launcher/src/testing/test-image.ts). */
export function testImage(): Promise<string> {
  image ??= ensureTestImage(testCli());
  return image;
}

/** A job on the test image (1 vCPU, 64 MiB, a minute at most), its id `{prefix}-` and random hex; `extra` wins. */
export async function testJob(
  prefix: string,
  assignment_seq: number,
  extra: Partial<WorkloadSpecInput> = {},
): Promise<WorkloadSpecInput> {
  return {
    workload_id: `${prefix}-${randomBytes(6).toString('hex')}`,
    kind: 'job',
    assignment_seq,
    image: await testImage(),
    vcpus: 1,
    memory_mib: 64,
    max_runtime_ms: 60_000,
    ...extra,
  };
}
