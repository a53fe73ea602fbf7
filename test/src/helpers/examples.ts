// Runs a script of one of examples/ as its own process, as a user would (Node, the example's directory, only
// PATH and the given environment); killed at cleanup. Its first line of output is given apart (a backend's
// address), and its exit with everything it wrote.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { onCleanup, REPO_ROOT } from './network.js';

export interface ExampleRun {
  /** The exit code, stdout (with stderr when merged) and stderr (when not merged). */
  done: Promise<{ code: number | null; out: string; err: string }>;
  firstLine: Promise<string>;
}

/** `example` is the directory under examples/; `merge_stderr` writes stderr into `out` as it arrives. */
export function runExample(
  example: string,
  script: string,
  env: Record<string, string>,
  opts: { merge_stderr?: boolean } = {},
): ExampleRun {
  const dir = join(REPO_ROOT, 'examples', example);
  const child = spawn(process.execPath, [join(dir, script)], {
    cwd: dir,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onCleanup(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  let resolveLine: (l: string) => void;
  const firstLine = new Promise<string>((r) => (resolveLine = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('\n')) resolveLine(out.split('\n')[0]!);
  });
  child.stderr.on('data', (d: Buffer) => {
    if (opts.merge_stderr) out += d.toString();
    else err += d.toString();
  });
  const done = new Promise<{ code: number | null; out: string; err: string }>((r) =>
    child.on('exit', (code) => r({ code, out, err })),
  );
  return { done, firstLine };
}
