// The parts of podman's JSON the runtime reads, checked with zod (podman's answers are input like any other).
import { z } from 'zod';
import { RuntimeError } from '../errors.js';
import type { ImageRef } from '../runtime.js';

const PortBinding = z.object({ HostIp: z.string(), HostPort: z.string() });

const ContainerInspect = z.object({
  Id: z.string().regex(/^[0-9a-f]{64}$/),
  Image: z.string(),
  State: z.object({
    Status: z.string(),
    Running: z.boolean(),
    OOMKilled: z.boolean(),
    ExitCode: z.number().int(),
    StartedAt: z.string(),
    FinishedAt: z.string(),
    CgroupPath: z.string().optional(),
  }),
  Config: z.object({ Labels: z.record(z.string(), z.string()).nullable().optional() }),
  NetworkSettings: z
    .object({ Ports: z.record(z.string(), z.array(PortBinding).nullable()).nullable().optional() })
    .optional(),
});

export interface ContainerState {
  id: string;
  /** The image id it runs, sha256:… */
  image_id: string;
  status: string;
  running: boolean;
  oom_killed: boolean;
  exit_code: number;
  /** ms since the epoch; null when podman has none (never started / still running). */
  started_at_ms: number | null;
  finished_at_ms: number | null;
  /** The cgroup, relative to the cgroup mount, while it runs. */
  cgroup_path: string | null;
  labels: Record<string, string>;
  /** host port per published `port/proto`. */
  ports: Record<string, number>;
}

/** Go's zero time ("0001-01-01T00:00:00Z") and anything unparsable are null. */
function time(s: string): number | null {
  const t = Date.parse(s);
  return Number.isFinite(t) && t > 0 ? t : null;
}

export function parseContainerInspect(json: unknown): ContainerState[] {
  const r = z.array(ContainerInspect).safeParse(json);
  if (!r.success)
    throw new RuntimeError(
      'runtime_failed',
      `podman container inspect: unexpected JSON (${r.error.issues[0]?.message})`,
    );
  return r.data.map((c) => {
    const ports: Record<string, number> = {};
    for (const [k, v] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
      const port = Number(v?.[0]?.HostPort);
      if (Number.isInteger(port) && port > 0) ports[k] = port;
    }
    return {
      id: c.Id,
      image_id: c.Image.startsWith('sha256:') ? c.Image : `sha256:${c.Image}`,
      status: c.State.Status,
      running: c.State.Running,
      oom_killed: c.State.OOMKilled,
      exit_code: c.State.ExitCode,
      started_at_ms: time(c.State.StartedAt),
      finished_at_ms: time(c.State.FinishedAt),
      cgroup_path: c.State.CgroupPath || null,
      labels: c.Config.Labels ?? {},
      ports,
    };
  });
}

const ImageInspect = z.object({
  Id: z.string().regex(/^[0-9a-f]{64}$/),
  Digest: z.string().optional(),
});

export function parseImageInspect(name: string, json: unknown): ImageRef {
  const r = z.array(ImageInspect).length(1).safeParse(json);
  if (!r.success)
    throw new RuntimeError('runtime_failed', `podman image inspect: unexpected JSON (${r.error.issues[0]?.message})`);
  const img = r.data[0]!;
  const digest = img.Digest && /^sha256:[0-9a-f]{64}$/.test(img.Digest) ? img.Digest : null;
  return { name, id: `sha256:${img.Id}`, digest };
}

/** `podman ps --format json`: the fields the sweep reads. */
const PsEntry = z.object({
  Id: z.string().regex(/^[0-9a-f]{64}$/),
  State: z.string(),
  Labels: z.record(z.string(), z.string()).nullable().optional(),
});

export interface PsEntry {
  id: string;
  state: string;
  labels: Record<string, string>;
}

export function parsePs(json: unknown): PsEntry[] {
  const r = z.array(PsEntry).safeParse(json ?? []);
  if (!r.success)
    throw new RuntimeError('runtime_failed', `podman ps: unexpected JSON (${r.error.issues[0]?.message})`);
  return r.data.map((e) => ({ id: e.Id, state: e.State, labels: e.Labels ?? {} }));
}
