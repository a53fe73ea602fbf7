// The container runtime on podman: resolves local images, starts containers with the isolation of args.ts,
// learns of exits from one `podman events` stream (plus a periodic sweep), and takes over its own containers
// after a restart by their `ee.launcher` label.
import { existsSync } from 'node:fs';
import { mkdir, chmod, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { CapacityLedger, type CapacitySnapshot } from '../capacity.js';
import type { LauncherConfig } from '../config.js';
import { RuntimeError } from '../errors.js';
import { SWEEP_INTERVAL_MS } from '../limits.js';
import type { ContainerRuntime, ImageRef, Workload } from '../runtime.js';
import { ImageName, parseWorkloadSpec, type WorkloadSpecInput } from '../spec.js';
import { containerName, envFile, runArgs } from './args.js';
import { PodmanCli, podmanError } from './cli.js';
import { DiedEvents } from './events.js';
import { parseContainerInspect, parseImageInspect, parsePs, type ContainerState } from './inspect.js';
import { LABEL, recordFromLabels, recordOf } from './labels.js';
import { PodmanWorkload, readStopMarker, type WorkloadHost } from './workload.js';

/** Deaths seen before the start that caused them returned (fast exits); bounded. */
const MAX_EARLY_DEATHS = 1024;

export interface PodmanRuntimeOptions {
  logger?: Logger;
  now?: () => number;
}

export class PodmanRuntime implements ContainerRuntime, WorkloadHost {
  readonly cli: PodmanCli;
  readonly log: Logger;
  readonly now: () => number;
  private readonly ledger: CapacityLedger;
  private readonly by_id = new Map<string, PodmanWorkload>();
  private readonly by_container = new Map<string, PodmanWorkload>();
  private readonly starting = new Set<string>();
  private readonly early_deaths = new Set<string>();
  private readonly events: DiedEvents;
  private sweep_timer: NodeJS.Timeout | null = null;
  /** Private directory for env files while `podman run` reads them. */
  readonly env_dir: string;
  private closed = false;

  private constructor(
    readonly config: LauncherConfig,
    opts: PodmanRuntimeOptions,
  ) {
    this.cli = new PodmanCli({ command: config.container_runtime, global_args: config.container_global_args });
    this.log = opts.logger ?? pino({ level: config.log_level, base: { svc: 'launcher' } });
    this.now = opts.now ?? Date.now;
    this.ledger = new CapacityLedger(config.capacity);
    this.env_dir = envDir(config);
    this.events = new DiedEvents(
      this.cli,
      config.launcher_id,
      this.log,
      { died: (id) => this.onDied(id), restarted: () => void this.sweep() },
      this.now(),
    );
  }

  /** Checks that podman answers, prepares the state directory and starts watching for exits. */
  static async open(config: LauncherConfig, opts: PodmanRuntimeOptions = {}): Promise<PodmanRuntime> {
    const rt = new PodmanRuntime(config, opts);
    await rt.cli.ok(['version', '--format=json']);
    for (const dir of [config.state_dir, join(config.state_dir, 'stops'), join(config.state_dir, 'outputs')]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
    }
    // Env files of a previous run that died mid-start are deleted unread.
    await rm(rt.env_dir, { recursive: true, force: true });
    await mkdir(rt.env_dir, { recursive: true, mode: 0o700 });
    await chmod(rt.env_dir, 0o700);
    rt.events.start();
    rt.sweep_timer = setInterval(() => void rt.sweep(), SWEEP_INTERVAL_MS);
    rt.sweep_timer.unref();
    return rt;
  }

  async resolveImage(name: string): Promise<ImageRef> {
    if (!ImageName.safeParse(name).success) throw new RuntimeError('invalid_spec', `image: not an image name`);
    const args = ['image', 'inspect', '--', name];
    const r = await this.cli.call(args);
    if (r.code !== 0) {
      if (/image not known|no such image|failed to find/i.test(r.stderr))
        throw new RuntimeError('image_not_found', `no local image "${name}" (images are never pulled)`);
      throw podmanError(args, r);
    }
    return parseImageInspect(name, parseJson(r.stdout, 'image inspect'));
  }

  async start(input: WorkloadSpecInput): Promise<Workload> {
    const spec = parseWorkloadSpec(input);
    const id = spec.workload_id;
    if (this.closed) throw new RuntimeError('runtime_failed', 'the runtime is closed');
    if (this.by_id.has(id) || this.starting.has(id))
      throw new RuntimeError('already_exists', `workload ${id} is already known`);
    this.starting.add(id);
    try {
      const need = { vcpus: spec.vcpus, memory_mib: spec.memory_mib };
      if (!this.ledger.reserve(id, need)) {
        const free = this.ledger.snapshot().free;
        throw new RuntimeError(
          'insufficient_capacity',
          `needs ${need.vcpus} vCPUs and ${need.memory_mib} MiB; free: ${free.vcpus} vCPUs, ${free.memory_mib} MiB`,
        );
      }
      try {
        return await this.create(spec);
      } catch (err) {
        this.ledger.release(id);
        throw err;
      }
    } finally {
      this.starting.delete(id);
    }
  }

  private async create(spec: ReturnType<typeof parseWorkloadSpec>): Promise<PodmanWorkload> {
    const id = spec.workload_id;
    const image = await this.resolveImage(spec.image);
    const record = recordOf(spec, image);
    const output_dir = spec.output_file === undefined ? null : this.outputDir(id);
    if (output_dir !== null) {
      // Writable by whatever user the image runs as; the parent (mode 700) keeps everyone else out.
      await mkdir(output_dir, { recursive: true });
      await chmod(output_dir, 0o777);
    }
    const run = {
      spec,
      record,
      launcher_id: this.config.launcher_id,
      run_args: this.config.container_run_args,
      output_host_dir: output_dir,
    };
    const r = await this.withEnvFile(id, spec.env, (path) => this.cli.call(runArgs({ ...run, env_file: path })));
    const container_id = r.stdout.toString('utf8').trim().split('\n').pop() ?? '';
    if (r.code !== 0 || !/^[0-9a-f]{64}$/.test(container_id)) {
      if (/already in use/i.test(r.stderr))
        throw new RuntimeError('already_exists', `a container for workload ${id} exists (reconcile adopts it)`);
      await this.cli.call(['rm', '--force', '--', containerName(id)]).catch(() => undefined);
      if (output_dir !== null) await rm(output_dir, { recursive: true, force: true });
      throw podmanError(['run'], r);
    }
    const state = await this.inspect(container_id);
    if (state === null || state.image_id !== image.id) {
      await this.cli.call(['rm', '--force', '--', container_id]).catch(() => undefined);
      throw new RuntimeError('runtime_failed', `container ${container_id} vanished or runs another image`);
    }
    const w = this.track(new PodmanWorkload(this, record, state, null));
    this.log.info({ workload_id: id, kind: spec.kind, container_id, image: image.id }, 'container started');
    if (this.early_deaths.delete(container_id)) void w.checkExit().catch((err) => this.warn(w, err));
    return w;
  }

  /** The env reaches podman in a file (mode 600, in a private directory on a tmpfs when there is one) that
   * exists only while `podman run` reads it: never on a command line, never left behind. (A pipe would do,
   * but Node's child stdio is a socket, which podman cannot open by path.) */
  private async withEnvFile<T>(id: string, env: Record<string, string>, fn: (path: string) => Promise<T>): Promise<T> {
    const path = join(this.env_dir, id);
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.writeFile(envFile(env));
    } finally {
      await fh.close();
    }
    try {
      return await fn(path);
    } finally {
      await rm(path, { force: true });
    }
  }

  async reconcile(): Promise<Workload[]> {
    const ps = parsePs(
      await this.cli.json([
        'ps',
        '--all',
        `--filter=label=${LABEL.launcher}=${this.config.launcher_id}`,
        '--format=json',
      ]),
    );
    const fresh = ps.filter((e) => !this.by_container.has(e.id)).map((e) => e.id);
    if (fresh.length === 0) return [];
    const states = parseContainerInspect(await this.cli.json(['container', 'inspect', '--', ...fresh]));
    const found: Workload[] = [];
    for (const s of states) {
      const record = recordFromLabels(s.labels);
      if (record === null || this.by_id.has(record.workload_id) || this.starting.has(record.workload_id)) {
        this.log.warn({ container_id: s.id }, 'container with our label but unusable labels or a known id: left alone');
        continue;
      }
      if (s.image_id !== record.image.id) record.image = { ...record.image, id: s.image_id, digest: null };
      const stop = await readStopMarker(this.stopMarkerPath(record.workload_id));
      const w = new PodmanWorkload(this, record, s, stop);
      if (w.running) this.ledger.adopt(record.workload_id, { vcpus: record.vcpus, memory_mib: record.memory_mib });
      this.track(w);
      found.push(w);
    }
    this.log.info({ found: found.length }, 'reconciled containers');
    return found;
  }

  get(workload_id: string): Workload | undefined {
    return this.by_id.get(workload_id);
  }

  list(): Workload[] {
    return [...this.by_id.values()];
  }

  capacity(): CapacitySnapshot {
    return this.ledger.snapshot();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.events.stop();
    if (this.sweep_timer) clearInterval(this.sweep_timer);
    for (const w of this.by_id.values()) w.detach();
    // Empty by now (each env file lives only during its `podman run`); a closed runtime starts nothing more.
    await rm(this.env_dir, { recursive: true, force: true });
  }

  // ---- WorkloadHost ----

  async inspect(container_id: string): Promise<ContainerState | null> {
    const args = ['container', 'inspect', '--', container_id];
    const r = await this.cli.call(args);
    if (r.code !== 0) {
      if (/no such container/i.test(r.stderr)) return null;
      throw podmanError(args, r);
    }
    return parseContainerInspect(parseJson(r.stdout, 'container inspect'))[0] ?? null;
  }

  stopMarkerPath(workload_id: string): string {
    return join(this.config.state_dir, 'stops', workload_id);
  }

  outputDir(workload_id: string): string {
    return join(this.config.state_dir, 'outputs', workload_id);
  }

  exitedOut(w: PodmanWorkload): void {
    this.ledger.release(w.workload_id);
    this.log.info({ workload_id: w.workload_id }, 'container exited');
  }

  removed(w: PodmanWorkload): void {
    this.by_id.delete(w.workload_id);
    this.by_container.delete(w.container_id);
  }

  // ---- exits ----

  private track(w: PodmanWorkload): PodmanWorkload {
    this.by_id.set(w.workload_id, w);
    this.by_container.set(w.container_id, w);
    if (w.running) w.arm();
    else this.ledger.release(w.workload_id); // exited already: holds nothing
    return w;
  }

  private onDied(container_id: string): void {
    const w = this.by_container.get(container_id);
    if (w !== undefined) return void w.checkExit().catch((err) => this.warn(w, err));
    // A fast container can die before `podman run` returned its id: remember it for start().
    if (this.early_deaths.size >= MAX_EARLY_DEATHS) this.early_deaths.clear();
    this.early_deaths.add(container_id);
  }

  /** Backstop for missed events: any tracked container podman does not list as running is checked. */
  private async sweep(): Promise<void> {
    const running = [...this.by_id.values()].filter((w) => w.running);
    if (this.closed || running.length === 0) return;
    try {
      const ps = parsePs(
        await this.cli.json([
          'ps',
          '--all',
          `--filter=label=${LABEL.launcher}=${this.config.launcher_id}`,
          '--format=json',
        ]),
      );
      const state = new Map(ps.map((e) => [e.id, e.state]));
      for (const w of running)
        if (state.get(w.container_id) !== 'running') await w.checkExit().catch((err) => this.warn(w, err));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'sweep failed');
    }
  }

  private warn(w: PodmanWorkload, err: unknown): void {
    this.log.warn({ workload_id: w.workload_id, err: (err as Error).message }, 'checking a container failed');
  }
}

/** On a tmpfs (/dev/shm) when the machine has one, so env values never reach a disk; else the state dir. */
function envDir(config: LauncherConfig): string {
  const shm = '/dev/shm';
  return existsSync(shm) ? join(shm, `ee-launcher-${config.launcher_id}`) : join(config.state_dir, 'env');
}

function parseJson(buf: Buffer, what: string): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new RuntimeError('runtime_failed', `podman ${what}: output is not JSON`);
  }
}
