// A job's output file in its result: copied out by the runtime after the exit, bounded here by the API's limit
// (JOB_OUTPUT_MAX_BYTES, under the runtime's own), base64 in the sealed result. A job that exited 0 but whose
// output file cannot be returned (too large, not a regular file) ends `failed` with that as its reason, so the
// client learns why without opening anything; it still pays what it ran (the usage record says so).
import { JOB_OUTPUT_MAX_BYTES, type JobOutputPlain } from '@easyenclave/protocol/launcher';
import type { OutputFile, WorkloadResult } from '../runtime.js';

const MIB = 1024 * 1024;

export function jobOutput(o: OutputFile | null): JobOutputPlain | null {
  if (o === null) return null;
  if (o.status === 'ok')
    return o.bytes.length > JOB_OUTPUT_MAX_BYTES
      ? { status: 'too_large', size_bytes: o.bytes.length, max_bytes: JOB_OUTPUT_MAX_BYTES }
      : { status: 'ok', bytes: o.bytes.toString('base64') };
  if (o.status === 'too_large') return { ...o, max_bytes: JOB_OUTPUT_MAX_BYTES };
  return o;
}

/** The end state and reason, with an output file that cannot be returned turning a success into a failure. */
export function withOutput(
  r: Pick<WorkloadResult, 'state' | 'reason'>,
  out: JobOutputPlain | null,
): Pick<WorkloadResult, 'state' | 'reason'> {
  if (r.state !== 'succeeded' || out === null) return r;
  if (out.status === 'too_large')
    return {
      state: 'failed',
      reason: `output file too large: ${out.size_bytes} bytes, the limit is ${out.max_bytes / MIB} MiB`,
    };
  if (out.status === 'not_a_file')
    return { state: 'failed', reason: 'output file is not a regular file (a link, directory or FIFO)' };
  return r;
}
