// Samples a running container's cgroup: OOM kills and CPU time. podman's own OOMKilled flag comes from
// conmon, which misses kills on some hosts (cgroup v1 here); the kernel's counters do not. Reads only, both
// cgroup v2 (unified) and v1 layouts; anything unreadable is null, never an error.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface CgroupSample {
  oom_kills: number | null;
  cpu_usage_ns: number | null;
}

const CGROUP_ROOT = '/sys/fs/cgroup';

async function read(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

function field(text: string | null, name: string): number | null {
  const m = text === null ? null : new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** `cgroup_path` as podman reports it (State.CgroupPath), relative to the cgroup mount. */
export async function sampleCgroup(cgroup_path: string): Promise<CgroupSample> {
  if (!cgroup_path.startsWith('/') || cgroup_path.split('/').includes('..'))
    return { oom_kills: null, cpu_usage_ns: null };
  const v2 = join(CGROUP_ROOT, cgroup_path);
  const events = await read(join(v2, 'memory.events'));
  if (events !== null) {
    const usec = field(await read(join(v2, 'cpu.stat')), 'usage_usec');
    return { oom_kills: field(events, 'oom_kill'), cpu_usage_ns: usec === null ? null : usec * 1000 };
  }
  const oom = field(await read(join(CGROUP_ROOT, 'memory', cgroup_path, 'memory.oom_control')), 'oom_kill');
  const usage = (await read(join(CGROUP_ROOT, 'cpuacct', cgroup_path, 'cpuacct.usage')))?.trim();
  return { oom_kills: oom, cpu_usage_ns: usage && /^\d+$/.test(usage) ? Number(usage) : null };
}
