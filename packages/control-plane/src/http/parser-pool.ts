// Node keeps freed HTTP parsers for reuse in a pool of up to 1000 (`parsers`, a FreeList in node:_http_common).
// Each pooled parser holds ~1.9 KiB of native memory (llhttp state and its header slots) plus ~0.3 KiB of
// heap. An agent tunnel is an upgraded HTTP connection whose parser is freed into that pool at the upgrade,
// so a burst of N agents connecting at once (a control-plane restart) leaves up to N parsers pooled for the
// life of the process: ~2 KiB per agent for nothing. A small pool still serves connection churn; a miss costs
// one parser allocation.

import { createRequire } from 'node:module';

export const HTTP_PARSER_POOL_MAX = 64;

interface FreeListLike {
  max: number;
  list: unknown[];
}

/** Caps Node's HTTP parser pool. Returns false (and changes nothing) when this Node has no such pool. */
export function capHttpParserPool(max = HTTP_PARSER_POOL_MAX): boolean {
  try {
    const pool = (createRequire(import.meta.url)('_http_common') as { parsers?: Partial<FreeListLike> }).parsers;
    if (!pool || typeof pool.max !== 'number' || !Array.isArray(pool.list)) return false;
    pool.max = Math.min(pool.max, max);
    for (const parser of pool.list.splice(pool.max)) (parser as { close?: () => void }).close?.(); // as Node does past its cap
    return true;
  } catch {
    return false; // an internal module this Node does not have: nothing to tune
  }
}
