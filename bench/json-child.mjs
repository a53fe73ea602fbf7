// Runs a bench script in its own node process (so the measuring client never shares an event loop with what
// it measures): the options go in as one JSON argument, the result comes back as the last stdout line.
import { spawn } from 'node:child_process';

/** Resolves with the child's last stdout line parsed as JSON; the child is killed after `limit_ms`. */
export function runJsonChild(script, opts, limit_ms, what, onSpawn) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-8000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), limit_ms);
    onSpawn?.(child);
    child.on('exit', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`${what} failed (exit ${code}): ${err || out}`));
      }
    });
  });
}
