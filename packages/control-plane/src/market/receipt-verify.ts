// Receipt signatures are the control plane's main cost per receipt (an Ed25519 verification is tens to
// hundreds of µs), so they are checked on worker threads while the main thread runs the ledger: calls made
// in the same turn of the event loop go to a worker as one message. With no worker (or a failed one) the check
// runs here, synchronously: the same answer, only slower. Used as checkReceipt's `verify` (reservations.ts).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { canonicalRecordJson, signingBytesOfCanonical } from '@easyenclave/protocol/signed-record';
import { verifySignature } from './receipt-verify-core.js';

/** Signatures per worker message; more wait for the next. */
const MAX_BATCH = 512;
/** Workers: the cores beside the main thread, at most this many. */
const MAX_WORKERS = 4;

interface Pending {
  item: [string, Uint8Array, string];
  resolve: (ok: boolean) => void;
}

export class SignatureVerifier {
  #workers: Worker[] = [];
  #next = 0;
  #seq = 0;
  #waiting = new Map<number, { w: Worker; batch: Pending[] }>();
  #queue: Pending[] = [];
  #scheduled = false;
  /** The canonical JSON of each record verify() saw, for as long as the record lives (claim stores it). */
  #canonical = new WeakMap<object, string>();

  /** The canonical JSON verify() computed for this record object (undefined if it saw another). */
  canonicalOf(record: object): string | undefined {
    return this.#canonical.get(record);
  }

  constructor(workers = Math.min(MAX_WORKERS, Math.max(0, availableParallelism() - 1))) {
    for (let i = 0; i < workers; i++) {
      const w = new Worker(new URL('./receipt-verify-worker.js', import.meta.url));
      w.unref();
      w.on('message', (m: { id: number; ok: boolean[] }) => {
        const entry = this.#waiting.get(m.id);
        this.#waiting.delete(m.id);
        entry?.batch.forEach((p, i) => p.resolve(m.ok[i] === true));
      });
      w.on('error', () => this.#drop(w));
      w.on('exit', () => this.#drop(w));
      this.#workers.push(w);
    }
  }

  /** checkReceipt's `verify`: the record's signing bytes are made here, the signature checked on a worker. */
  verify = (key_hex: string, record: unknown, sig_hex: string, domain: string): Promise<boolean> => {
    const canonical = canonicalRecordJson(record);
    if (typeof record === 'object' && record !== null) this.#canonical.set(record, canonical);
    const bytes = signingBytesOfCanonical(domain, canonical);
    return new Promise((resolve) => {
      this.#queue.push({ item: [key_hex, bytes, sig_hex], resolve });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  };

  #flush(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_BATCH);
      const w = this.#workers[this.#next++ % Math.max(1, this.#workers.length)];
      if (w === undefined) {
        for (const p of batch) p.resolve(verifySignature(...p.item));
        continue;
      }
      const id = ++this.#seq;
      this.#waiting.set(id, { w, batch });
      w.postMessage({ id, items: batch.map((p) => p.item) });
    }
  }

  /** A worker died: it takes no more work, and what it held is checked here. */
  #drop(w: Worker): void {
    this.#workers = this.#workers.filter((x) => x !== w);
    for (const [id, entry] of this.#waiting) {
      if (entry.w !== w) continue;
      this.#waiting.delete(id);
      for (const p of entry.batch) p.resolve(verifySignature(...p.item));
    }
  }

  close(): Promise<unknown> {
    return Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
