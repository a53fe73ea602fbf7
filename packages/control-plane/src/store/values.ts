// Checked column values for the store's queries (apps.ts, agents.ts): times must be integer ms (PostgreSQL BIGINT
// rejects fractions, and SQLite would silently store a REAL), and booleans are stored as 0/1.
import type { Int01 } from './schema.js';

export const b01 = (v: boolean): Int01 => (v ? 1 : 0);

/** A time in integer milliseconds, or a RangeError naming the argument. */
export function ms(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new RangeError(`${name} must be a non-negative integer of milliseconds, got ${v}`);
  return v;
}
export function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}
