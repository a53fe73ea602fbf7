// Watches the attestation policy (and collateral) files for the verifier (verifier.ts): a change, settled for
// debounce_ms (editors write in several steps), calls onChange once. Directories are watched, not files:
// editors replace files by rename, the policy file may not exist yet, and mounted Kubernetes config maps swap
// a `..data` symlink rather than the file. The verifier's reload does nothing when the contents are unchanged.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';

export class PolicyWatch {
  readonly #watchers: FSWatcher[] = [];
  #debounce: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(
    files: readonly string[],
    private readonly debounce_ms: number,
    private readonly onChange: () => void,
    private readonly log: Logger,
  ) {
    const names = new Set(files.map((f) => basename(f)));
    const relevant = (f: string | Buffer | null) =>
      f === null || names.has(f.toString()) || f.toString().startsWith('..');
    for (const dir of new Set(files.map((f) => dirname(f)))) {
      let w: FSWatcher;
      try {
        w = watch(dir, { persistent: false }, (_event, filename) => {
          if (relevant(filename)) this.#schedule();
        });
      } catch (err) {
        log.warn(
          { dir, err: (err as Error).message },
          'cannot watch the attestation policy directory: changes apply after a restart (SIGHUP)',
        );
        continue;
      }
      w.on('error', (err) =>
        log.warn(
          { dir, err: err.message },
          'attestation policy watcher failed: changes apply after a restart (SIGHUP)',
        ),
      );
      this.#watchers.push(w);
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#debounce !== null) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = null;
      if (!this.#closed) this.onChange();
    }, this.debounce_ms);
    this.#debounce.unref();
  }

  close(): void {
    this.#closed = true;
    if (this.#debounce !== null) clearTimeout(this.#debounce);
    for (const w of this.#watchers) w.close();
    this.#watchers.length = 0;
  }
}
