// A container's output, read from conmon's log file through `podman logs` (so it survives a launcher restart
// and can be read from the start): followed as streams while it runs, or read once into bounded tails.
import { PassThrough } from 'node:stream';
import { LOG_TAIL_MAX_BYTES, PODMAN_COMMAND_TIMEOUT_MS } from '../limits.js';
import { RuntimeError } from '../errors.js';
import type { LogStream } from '../runtime.js';
import { TailBuffer } from '../tail.js';
import type { PodmanCli } from './cli.js';

/** Buffered per stream before backpressure stops reading from podman (which then stops reading the file). */
export const LOG_STREAM_HIGH_WATER_BYTES = 64 * 1024;

export function followLogs(cli: PodmanCli, container_id: string): LogStream {
  const child = cli.spawn(['logs', '--follow', '--', container_id]);
  const stdout = new PassThrough({ highWaterMark: LOG_STREAM_HIGH_WATER_BYTES });
  const stderr = new PassThrough({ highWaterMark: LOG_STREAM_HIGH_WATER_BYTES });
  child.stdout!.pipe(stdout);
  child.stderr!.pipe(stderr);
  const done = new Promise<void>((resolve) => {
    child.on('close', () => resolve());
    child.on('error', (err) => {
      stdout.destroy(err);
      stderr.destroy(err);
      resolve();
    });
  });
  return {
    stdout,
    stderr,
    done,
    close: () => {
      child.kill('SIGTERM');
      stdout.end();
      stderr.end();
    },
  };
}

export interface LogTails {
  stdout: TailBuffer;
  stderr: TailBuffer;
}

/** Reads the whole log of an exited container, keeping the last LOG_TAIL_MAX_BYTES of each stream. */
export function readTails(cli: PodmanCli, container_id: string): Promise<LogTails> {
  const tails = { stdout: new TailBuffer(LOG_TAIL_MAX_BYTES), stderr: new TailBuffer(LOG_TAIL_MAX_BYTES) };
  return new Promise((resolve, reject) => {
    const child = cli.spawn(['logs', '--', container_id]);
    const timer = setTimeout(() => child.kill('SIGKILL'), PODMAN_COMMAND_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => tails.stdout.write(d));
    child.stderr!.on('data', (d: Buffer) => tails.stderr.write(d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new RuntimeError('runtime_failed', `podman logs: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(tails);
      else reject(new RuntimeError('runtime_failed', `podman logs exited ${code}`));
    });
  });
}
