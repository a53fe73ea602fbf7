// The podman command line: spawned with argument arrays (never a shell), the operator's global flags first,
// a deadline and an output cap on every call. Secrets never appear in an argument.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PODMAN_COMMAND_TIMEOUT_MS, PODMAN_OUTPUT_MAX_BYTES, PODMAN_STDERR_MAX_BYTES } from '../limits.js';
import { RuntimeError } from '../errors.js';

export interface PodmanCliOptions {
  /** The podman command (EE_CONTAINER_RUNTIME). */
  command: string;
  /** Flags before the subcommand (EE_CONTAINER_GLOBAL_ARGS). */
  global_args: readonly string[];
}

export interface CallOptions {
  /** Written to the process's stdin, which is then closed (`podman import -`). */
  stdin?: Buffer;
  timeout_ms?: number;
  max_stdout_bytes?: number;
}

export interface CallResult {
  code: number;
  stdout: Buffer;
  /** The first PODMAN_STDERR_MAX_BYTES of stderr, for messages. */
  stderr: string;
}

/**
 * podman's working directory: conmon writes an `oom` marker file into its working directory when a container is
 * OOM-killed, so podman never runs in the caller's (a repository, a service's home) but in a private one.
 */
function podmanWorkDir(): string {
  const dir = join(tmpdir(), 'ee-podman');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export class PodmanCli {
  private readonly cwd = podmanWorkDir();

  constructor(readonly options: PodmanCliOptions) {}

  /** The full argument vector of a call (for tests and logs; it never holds a secret). */
  argv(args: readonly string[]): string[] {
    return [...this.options.global_args, ...args];
  }

  /** A long-running podman process (events, logs --follow); the caller owns it. */
  spawn(args: readonly string[]): ChildProcess {
    return spawn(this.options.command, this.argv(args), { cwd: this.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs podman to completion. Rejects (runtime_failed) on spawn failure, deadline or oversized output. */
  call(args: readonly string[], opts: CallOptions = {}): Promise<CallResult> {
    const timeout_ms = opts.timeout_ms ?? PODMAN_COMMAND_TIMEOUT_MS;
    const max_stdout = opts.max_stdout_bytes ?? PODMAN_OUTPUT_MAX_BYTES;
    return new Promise((resolve, reject) => {
      const child = spawn(this.options.command, this.argv(args), {
        cwd: this.cwd,
        stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      let out_bytes = 0;
      let err = '';
      let failure: string | null = null;
      const fail = (why: string) => {
        if (failure !== null) return;
        failure = why;
        child.kill('SIGKILL');
      };
      const timer = setTimeout(() => fail(`no answer within ${timeout_ms} ms`), timeout_ms);
      child.stdout!.on('data', (d: Buffer) => {
        out_bytes += d.length;
        if (out_bytes > max_stdout) return fail(`printed more than ${max_stdout} bytes`);
        out.push(d);
      });
      child.stderr!.on('data', (d: Buffer) => {
        if (err.length < PODMAN_STDERR_MAX_BYTES) err += d.toString('utf8').slice(0, PODMAN_STDERR_MAX_BYTES);
      });
      if (opts.stdin) {
        // podman may exit before reading stdin (a bad flag): EPIPE is then not our error, its exit code is.
        child.stdin!.on('error', () => {});
        child.stdin!.end(opts.stdin);
      }
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new RuntimeError('runtime_failed', `${this.options.command} ${args[0] ?? ''}: ${e.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (failure !== null)
          return reject(new RuntimeError('runtime_failed', `${this.options.command} ${args[0] ?? ''}: ${failure}`));
        resolve({ code: code ?? 128 + signalNumber(signal), stdout: Buffer.concat(out), stderr: err.trim() });
      });
    });
  }

  /** Like call(), but a non-zero exit is a RuntimeError (runtime_failed) carrying podman's message. */
  async ok(args: readonly string[], opts: CallOptions = {}): Promise<Buffer> {
    const r = await this.call(args, opts);
    if (r.code !== 0) throw podmanError(args, r);
    return r.stdout;
  }

  /** call() + JSON.parse of stdout. */
  async json(args: readonly string[], opts: CallOptions = {}): Promise<unknown> {
    const out = await this.ok(args, opts);
    try {
      return JSON.parse(out.toString('utf8'));
    } catch {
      throw new RuntimeError('runtime_failed', `podman ${args[0] ?? ''}: output is not JSON`);
    }
  }
}

export function podmanError(args: readonly string[], r: CallResult): RuntimeError {
  return new RuntimeError('runtime_failed', `podman ${args[0] ?? ''} exited ${r.code}: ${r.stderr || '(no message)'}`);
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : (constants.signals[signal] ?? 0);
}
