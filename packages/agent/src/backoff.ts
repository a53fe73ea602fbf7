// Full-jitter exponential backoff (AWS architecture blog): delay = random(0, min(cap, base * 2^attempt)).
import { RECONNECT_BASE_MS, RECONNECT_CAP_MS } from '@easyenclave/protocol';

export function fullJitterDelay(
  attempt: number,
  base_ms = RECONNECT_BASE_MS,
  cap_ms = RECONNECT_CAP_MS,
  random = Math.random,
): number {
  const ceiling = Math.min(cap_ms, base_ms * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
