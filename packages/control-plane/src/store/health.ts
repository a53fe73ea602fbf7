// The database's state as the API sees it, kept in memory so /health can report it without a query:
// `unavailable` from the first fault a request met (faults.ts) until a probe (`SELECT 1`) answers again
// and no new fault came for STORE_FAULT_HOLD_MS (so a disk that fails every write does not flap to `ok`
// between writes). While unavailable, a probe runs every STORE_PROBE_INTERVAL_MS; /ready probes itself.
import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';

export const STORE_PROBE_INTERVAL_MS = 1000;
export const STORE_PROBE_TIMEOUT_MS = 2000;
export const STORE_FAULT_HOLD_MS = 3000;
/** What a 503 store_unavailable suggests as Retry-After. */
export const STORE_RETRY_AFTER_S = 2;

export type StoreState = 'ok' | 'unavailable';

export class StoreHealth {
  #state: StoreState = 'ok';
  #lastFaultMs = 0;
  #lastError: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #probing: Promise<boolean> | null = null;
  #closed = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): StoreState {
    return this.#state;
  }

  /** A short description of the last fault (no stack, no SQL), for /health. */
  get lastError(): string | null {
    return this.#state === 'ok' ? null : this.#lastError;
  }

  /** A request (or a probe) met a store fault. */
  fault(err: unknown): void {
    this.#lastFaultMs = this.now();
    const e = err as { code?: unknown; message?: unknown };
    this.#lastError = typeof e?.code === 'string' ? e.code : String(e?.message ?? err).slice(0, 120);
    this.#state = 'unavailable';
    if (this.#timer === null && !this.#closed) {
      this.#timer = setInterval(() => void this.probe(), STORE_PROBE_INTERVAL_MS);
      this.#timer.unref();
    }
  }

  /** One `SELECT 1` (at most one at a time, bounded by STORE_PROBE_TIMEOUT_MS). True when the store answers. */
  probe(): Promise<boolean> {
    this.#probing ??= (async () => {
      let timeout: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          sql`SELECT 1`.execute(this.db),
          new Promise((_, reject) => {
            timeout = setTimeout(
              () => reject(new Error(`no answer within ${STORE_PROBE_TIMEOUT_MS} ms`)),
              STORE_PROBE_TIMEOUT_MS,
            );
          }),
        ]);
        if (this.#state !== 'ok' && this.now() - this.#lastFaultMs >= STORE_FAULT_HOLD_MS) this.#recovered();
        return this.#state === 'ok';
      } catch (err) {
        this.fault(err);
        return false;
      } finally {
        clearTimeout(timeout);
        this.#probing = null;
      }
    })();
    return this.#probing;
  }

  #recovered(): void {
    this.#state = 'ok';
    this.#lastError = null;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
