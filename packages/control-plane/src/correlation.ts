// The id of the request being served, carried along its asynchronous work (AsyncLocalStorage), so a line
// logged far from the HTTP layer — a ledger commit, a settlement — names the request that caused it. The API
// server enters it per request (observe/http.ts); code with no request around it sees undefined.
import { AsyncLocalStorage } from 'node:async_hooks';

const current = new AsyncLocalStorage<string>();

/** Runs `fn` (and everything it starts) with `request_id` as the current request's id. */
export function withRequestId<T>(request_id: string, fn: () => T): T {
  return current.run(request_id, fn);
}

/** The id of the request this code runs for, if any. */
export function currentRequestId(): string | undefined {
  return current.getStore();
}
