// The launcher's container settings from the environment, validated; errors name the variable. The operator
// may add podman flags, but only ones on an allowlist: a provider's setting can tune podman for the machine
// (runtime, storage, rlimits), never weaken the isolation the runtime applies (network, capabilities, mounts).
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { detectCapacity, type Capacity } from './capacity.js';

export interface LauncherConfig {
  /** EE_CONTAINER_RUNTIME: the podman command (a name on PATH or an absolute path). */
  container_runtime: string;
  /** EE_CONTAINER_GLOBAL_ARGS: flags before podman's subcommand, e.g. `--runtime runc`. */
  container_global_args: string[];
  /** EE_CONTAINER_RUN_ARGS: extra flags of `podman run`, e.g. `--ulimit nofile=1024:1024`. */
  container_run_args: string[];
  /** What the launcher offers: EE_LAUNCHER_VCPUS / EE_LAUNCHER_MEMORY_MIB, at most what the machine has. */
  capacity: Capacity;
  /** Labels every container it starts (`ee.launcher`), so it finds exactly its own after a restart. */
  launcher_id: string;
  /** Stop markers and job output directories (private, mode 700). */
  state_dir: string;
  log_level: string;
}

export class LauncherConfigError extends Error {
  override readonly name = 'LauncherConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable} ${message}`);
  }
}

type Env = Record<string, string | undefined>;

/** Global podman flags an operator may set (each takes one value). */
export const ALLOWED_GLOBAL_FLAGS: readonly string[] = [
  '--runtime',
  '--root',
  '--runroot',
  '--tmpdir',
  '--cgroup-manager',
  '--storage-driver',
  '--storage-opt',
  '--events-backend',
  '--conmon',
  '--log-level',
];
/** `podman run` flags an operator may add (each takes one value). */
export const ALLOWED_RUN_FLAGS: readonly string[] = ['--ulimit', '--userns', '--cgroup-parent', '--cgroupns'];

function get(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const v = get(env, name);
  if (v === undefined) return def;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
    throw new LauncherConfigError(name, `must be an integer from ${min} to ${max}, got "${v}"`);
  return Number(v);
}

/**
 * Splits a flag list on whitespace (no quoting: values cannot contain spaces) and checks every flag against
 * `allowed`. Accepts `--flag value` and `--flag=value`; returns the `--flag=value` form.
 */
export function parseFlagList(name: string, value: string | undefined, allowed: readonly string[]): string[] {
  const words = (value ?? '').split(/\s+/).filter((w) => w !== '');
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const eq = w.indexOf('=');
    const flag = eq === -1 ? w : w.slice(0, eq);
    if (!allowed.includes(flag))
      throw new LauncherConfigError(name, `may only contain ${allowed.join(', ')} (each with a value), got "${w}"`);
    const arg: string | undefined = eq === -1 ? words[++i] : w.slice(eq + 1);
    if (arg === undefined || arg === '' || arg.startsWith('-'))
      throw new LauncherConfigError(name, `needs a value after ${flag}`);
    if (flag === '--userns' && (arg === 'host' || arg.startsWith('ns:')))
      throw new LauncherConfigError(name, `must not share a user namespace (${flag}=${arg})`);
    if (flag === '--cgroupns' && arg === 'host')
      throw new LauncherConfigError(name, `must not share the host's cgroup namespace`);
    out.push(`${flag}=${arg}`);
  }
  return out;
}

function command(env: Env): string {
  const v = get(env, 'EE_CONTAINER_RUNTIME') ?? 'podman';
  if (!/^[A-Za-z0-9_./+-]+$/.test(v) || v.startsWith('-'))
    throw new LauncherConfigError('EE_CONTAINER_RUNTIME', `must be a command name or path, got "${v}"`);
  return v;
}

function resolveLauncherId(env: Env, state_dir: string): string {
  const given = get(env, 'EE_LAUNCHER_ID');
  if (given !== undefined) {
    if (!/^[A-Za-z0-9_-]{8,64}$/.test(given))
      throw new LauncherConfigError('EE_LAUNCHER_ID', `must be 8-64 characters of A-Z a-z 0-9 _ -, got "${given}"`);
    return given;
  }
  const file = join(state_dir, 'launcher-id');
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_-]{8,64}$/.test(kept)) return kept;
  } catch {
    // none kept yet
  }
  const id = randomUUID();
  mkdirSync(state_dir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return id;
}

export function loadLauncherConfig(env: Env, machine: Capacity = detectCapacity()): LauncherConfig {
  const state_dir = get(env, 'EE_LAUNCHER_STATE_DIR') ?? join(homedir(), '.easyenclave', 'launcher');
  if (!isAbsolute(state_dir) || state_dir.includes(','))
    throw new LauncherConfigError('EE_LAUNCHER_STATE_DIR', `must be an absolute path without ",", got "${state_dir}"`);
  return {
    container_runtime: command(env),
    container_global_args: parseFlagList(
      'EE_CONTAINER_GLOBAL_ARGS',
      get(env, 'EE_CONTAINER_GLOBAL_ARGS'),
      ALLOWED_GLOBAL_FLAGS,
    ),
    container_run_args: parseFlagList('EE_CONTAINER_RUN_ARGS', get(env, 'EE_CONTAINER_RUN_ARGS'), ALLOWED_RUN_FLAGS),
    capacity: {
      vcpus: int(env, 'EE_LAUNCHER_VCPUS', machine.vcpus, 0, machine.vcpus),
      memory_mib: int(env, 'EE_LAUNCHER_MEMORY_MIB', machine.memory_mib, 0, machine.memory_mib),
    },
    launcher_id: resolveLauncherId(env, state_dir),
    state_dir,
    log_level: get(env, 'EE_LOG_LEVEL') ?? 'info',
  };
}
