// The market's periodic work on the injected clock: renew leases at each period start, finalize periods after
// their end + EE_SETTLEMENT_DELAY, slash outages, refresh the routing order. One tick at a time per process
// (a tick asked for while one runs joins it); safe across replicas because every transfer id is deterministic
// and every operation re-checks its rows under lock.
import type { Market } from './market.js';
import type { Reservations } from './reservations.js';

export interface TickReport {
  renewed: number;
  finalized: number;
  slashed: number;
  /** Reservations ended (expiry, zero tolerance) and locks rolled over a period boundary. */
  reservations_closed: number;
  reservations_rolled: number;
}

export const TICK_INTERVAL_MS = 2000;

export class MarketScheduler {
  #running: Promise<TickReport> | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly market: Market,
    private readonly reservations: Reservations | null = null,
  ) {}

  start(interval_ms = TICK_INTERVAL_MS): void {
    this.#timer = setInterval(() => {
      this.tick().catch((err: unknown) => this.market.deps.log.error({ err }, 'market: scheduler tick failed'));
    }, interval_ms);
    this.#timer.unref();
  }

  stop(): Promise<unknown> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    return this.#running ?? Promise.resolve();
  }

  /** Runs one round (bounded: at most 500 leases / periods each), or joins the round already running. */
  tick(): Promise<TickReport> {
    this.#running ??= (async () => {
      try {
        const finalized = await this.market.finalizeDue();
        const renewed = await this.market.renewDue();
        const slashed = await this.market.slashOutages();
        const r = (await this.reservations?.sweep()) ?? { closed: 0, rolled: 0 };
        await this.market.refreshRanking();
        return { renewed, finalized, slashed, reservations_closed: r.closed, reservations_rolled: r.rolled };
      } finally {
        this.#running = null;
      }
    })();
    return this.#running;
  }
}
