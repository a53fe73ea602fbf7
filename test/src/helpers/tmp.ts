// Fresh temporary directories, removed when the test process exits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created: string[] = [];
let hooked = false;

export function tmpDir(prefix = 'ee-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  if (!hooked) {
    hooked = true;
    // 'exit' handlers must be synchronous, hence rmSync.
    process.on('exit', () => {
      // A helper process that outlives its test (a browser's) may still be writing: retry, and never let the
      // clean-up of a temporary directory fail a test file that passed.
      for (const d of created) {
        try {
          rmSync(d, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
        } catch (err) {
          process.stderr.write(`could not remove ${d}: ${(err as Error).message}\n`);
        }
      }
    });
  }
  return dir;
}
