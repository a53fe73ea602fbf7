// Copies a job's output file back from its output directory after the container exited. The container wrote
// that directory, so the name is opened without following symlinks and without blocking on a FIFO, and only a
// regular file of at most max_bytes is read.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { OutputFile } from './runtime.js';

export async function readOutputFile(dir: string, name: string, max_bytes: number): Promise<OutputFile> {
  let fh;
  try {
    fh = await open(join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { status: 'missing' };
    if (code === 'ELOOP' || code === 'EISDIR' || code === 'ENXIO') return { status: 'not_a_file' };
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { status: 'not_a_file' };
    if (st.size > max_bytes) return { status: 'too_large', size_bytes: st.size };
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await fh.read(buf, 0, st.size, 0);
    return { status: 'ok', bytes: buf.subarray(0, bytesRead) };
  } finally {
    await fh.close();
  }
}
