// A container carries, as labels, everything the launcher needs to take it over after a restart: whose it
// is, which assignment, its limits and the image it runs. Labels are visible to anyone who can inspect the
// container, so nothing secret goes here (env values never do).
import { z } from 'zod';
import type { ImageRef } from '../runtime.js';
import { ImageName, OutputFileName, WorkloadId, WorkloadKind, type WorkloadSpec } from '../spec.js';

export const LABEL = {
  launcher: 'ee.launcher',
  workload_id: 'ee.workload_id',
  kind: 'ee.kind',
  assignment_seq: 'ee.assignment_seq',
  vcpus: 'ee.vcpus',
  memory_mib: 'ee.memory_mib',
  max_runtime_ms: 'ee.max_runtime_ms',
  image: 'ee.image',
  image_id: 'ee.image_id',
  image_digest: 'ee.image_digest',
  port: 'ee.port',
  output_file: 'ee.output_file',
} as const;

/** What the launcher knows of a workload without its secrets: rebuilt from labels after a restart. */
export interface WorkloadRecord {
  workload_id: string;
  kind: WorkloadKind;
  assignment_seq: number;
  vcpus: number;
  memory_mib: number;
  max_runtime_ms: number | null;
  image: ImageRef;
  port: number | null;
  output_file: string | null;
}

export function recordOf(spec: WorkloadSpec, image: ImageRef): WorkloadRecord {
  return {
    workload_id: spec.workload_id,
    kind: spec.kind,
    assignment_seq: spec.assignment_seq,
    vcpus: spec.vcpus,
    memory_mib: spec.memory_mib,
    max_runtime_ms: spec.max_runtime_ms ?? null,
    image,
    port: spec.port ?? null,
    output_file: spec.output_file ?? null,
  };
}

export function labelsOf(r: WorkloadRecord, launcher_id: string): Array<[string, string]> {
  const l: Array<[string, string]> = [
    [LABEL.launcher, launcher_id],
    [LABEL.workload_id, r.workload_id],
    [LABEL.kind, r.kind],
    [LABEL.assignment_seq, String(r.assignment_seq)],
    [LABEL.vcpus, String(r.vcpus)],
    [LABEL.memory_mib, String(r.memory_mib)],
    [LABEL.image, r.image.name],
    [LABEL.image_id, r.image.id],
  ];
  if (r.image.digest !== null) l.push([LABEL.image_digest, r.image.digest]);
  if (r.max_runtime_ms !== null) l.push([LABEL.max_runtime_ms, String(r.max_runtime_ms)]);
  if (r.port !== null) l.push([LABEL.port, String(r.port)]);
  if (r.output_file !== null) l.push([LABEL.output_file, r.output_file]);
  return l;
}

const Count = z
  .string()
  .regex(/^\d{1,15}$/)
  .transform(Number);
const Sha256 = z.string().regex(/^sha256:[0-9a-f]{64}$/);
const Labels = z.object({
  [LABEL.workload_id]: WorkloadId,
  [LABEL.kind]: WorkloadKind,
  [LABEL.assignment_seq]: Count,
  [LABEL.vcpus]: Count,
  [LABEL.memory_mib]: Count,
  [LABEL.image]: ImageName,
  [LABEL.image_id]: Sha256,
  [LABEL.image_digest]: Sha256.optional(),
  [LABEL.max_runtime_ms]: Count.optional(),
  [LABEL.port]: Count.optional(),
  [LABEL.output_file]: OutputFileName.optional(),
});

/** The record of a container this launcher started, or null when its labels are not ours or not valid. */
export function recordFromLabels(labels: Record<string, string> | null | undefined): WorkloadRecord | null {
  const r = Labels.safeParse(labels ?? {});
  if (!r.success) return null;
  const l = r.data;
  return {
    workload_id: l[LABEL.workload_id],
    kind: l[LABEL.kind],
    assignment_seq: l[LABEL.assignment_seq],
    vcpus: l[LABEL.vcpus],
    memory_mib: l[LABEL.memory_mib],
    max_runtime_ms: l[LABEL.max_runtime_ms] ?? null,
    image: { name: l[LABEL.image], id: l[LABEL.image_id], digest: l[LABEL.image_digest] ?? null },
    port: l[LABEL.port] ?? null,
    output_file: l[LABEL.output_file] ?? null,
  };
}
