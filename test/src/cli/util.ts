// Runs the real `ee` bin (packages/cli/bin/ee.js) as a subprocess. Asynchronous on purpose: a test may run
// an in-process server that must keep answering while the CLI waits for it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/network.js';

export const EE_SHIM = join(REPO_ROOT, 'packages/cli/bin/ee.js');
/** A CLI run that takes longer than this is a hang, and fails the test. */
const RUN_TIMEOUT_MS = 30_000;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `ee ...args` with only PATH and HOME from this process plus `env` (no EE_* leaks in from the outside). */
export function ee(args: string[], env: Record<string, string | undefined> = {}, cwd = REPO_ROOT): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [EE_SHIM, ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ee ${args.join(' ')}: no exit within ${RUN_TIMEOUT_MS} ms\n${stdout}${stderr}`));
    }, RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

/** Exit 0 and stdout is exactly one JSON document (nothing else on stdout). */
export function json(r: Run): any {
  assert.equal(r.code, 0, show(r));
  return JSON.parse(r.stdout);
}

/** Exit `code` with `ee: <api code>: ...` on stderr and nothing on stdout. */
export function failsWith(r: Run, code: number, stderr: RegExp): void {
  assert.equal(r.code, code, show(r));
  assert.match(r.stderr, stderr, show(r));
  assert.equal(r.stdout, '', show(r));
}
