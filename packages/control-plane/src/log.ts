// The control plane's logger: pino JSON, with repeated errors rate-limited. A fault that hits every request
// (a full disk, PostgreSQL down) would otherwise write one stack trace per request; here the same error
// (same message and error code) is written at most LOG_REPEAT_MAX times per LOG_REPEAT_INTERVAL_MS, and
// the next line written after a quiet interval carries how many were suppressed (`suppressed_repeats`).
import { pino, type DestinationStream, type LevelWithSilent, type Logger } from 'pino';

export const LOG_REPEAT_MAX = 5;
export const LOG_REPEAT_INTERVAL_MS = 10_000;
/** Distinct errors tracked at once; beyond it the table starts afresh (bounded memory). */
export const LOG_REPEAT_MAX_KEYS = 1024;
/** pino's numeric level of `warn`: warnings and errors are limited, info and below never. */
const LIMITED_FROM_LEVEL = 40;

interface Window {
  start_ms: number;
  count: number;
  suppressed: number;
}

export class RepeatLimiter {
  readonly #windows = new Map<string, Window>();

  constructor(
    private readonly max = LOG_REPEAT_MAX,
    private readonly interval_ms = LOG_REPEAT_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether to write this occurrence of `key`; `suppressed` = occurrences dropped in its previous window. */
  admit(key: string): { write: boolean; suppressed: number } {
    const now = this.now();
    const w = this.#windows.get(key);
    if (w === undefined || now - w.start_ms >= this.interval_ms) {
      if (w === undefined && this.#windows.size >= LOG_REPEAT_MAX_KEYS) this.#windows.clear();
      this.#windows.set(key, { start_ms: now, count: 1, suppressed: 0 });
      return { write: true, suppressed: w?.suppressed ?? 0 };
    }
    if (w.count < this.max) {
      w.count++;
      return { write: true, suppressed: 0 };
    }
    w.suppressed++;
    return { write: false, suppressed: 0 };
  }
}

/** What makes two log calls "the same error": the message and the error's code or first line. */
function repeatKey(args: unknown[]): string {
  const [first, second] = args;
  const msg = typeof first === 'string' ? first : typeof second === 'string' ? second : '';
  const obj = (typeof first === 'object' && first !== null ? first : {}) as Record<string, unknown>;
  const err = (obj.err ?? obj.error ?? (first instanceof Error ? first : undefined)) as
    { code?: unknown; message?: unknown } | undefined;
  const detail = err ? String(err.code ?? String(err.message ?? '').split('\n')[0]) : String(obj.err_code ?? '');
  return `${msg}\u0000${detail.slice(0, 200)}`;
}

export function controlPlaneLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  const limiter = new RepeatLimiter();
  return pino(
    {
      level,
      base: { svc: 'control-plane' },
      hooks: {
        logMethod(args, method, lvl) {
          if (lvl < LIMITED_FROM_LEVEL) return method.apply(this, args);
          const { write, suppressed } = limiter.admit(repeatKey(args));
          if (!write) return;
          if (suppressed > 0) {
            const [first, ...rest] = args as unknown[];
            const merged =
              typeof first === 'object' && first !== null && !(first instanceof Error)
                ? { ...first, suppressed_repeats: suppressed }
                : { err: first instanceof Error ? first : undefined, suppressed_repeats: suppressed };
            const tail = typeof first === 'string' ? [first, ...rest] : rest;
            return method.apply(this, [merged, ...tail] as Parameters<typeof method>);
          }
          return method.apply(this, args);
        },
      },
    },
    destination,
  );
}
