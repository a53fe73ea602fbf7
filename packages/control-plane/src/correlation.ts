// The id of the request being served, carried along a service call's asynchronous work (AsyncLocalStorage), so
// a line logged far from the HTTP layer — a ledger commit, a fraud ruling — names the request that caused it.
// Routes that submit ledger operations themselves pass the id explicitly (LedgerStore.submit); a route enters a
// scope only around a call into a service that moves money (jobs, deployments, reservations, fraud rulings).
//
// Why not one scope per request: on Node 20, AsyncLocalStorage works through an async hook that runs for every
// promise created in the process — about 0.25 µs each, several times the cost of the promise itself — for as
// long as any storage is enabled. Entered per request, it taxed every proxied request and every ledger commit
// (`npm run bench -- small ledger`). Here it is enabled only while a scope is open, and disabled when the last
// one closes, so the proxy and the ledger's own routes never pay for it.
import { AsyncLocalStorage } from 'node:async_hooks';

const current = new AsyncLocalStorage<string>();
/** Scopes open right now; the storage (and its async hook) is enabled only while this is above zero. */
let open_scopes = 0;

/** Runs `fn` (and everything it starts before it settles) with `request_id` as the current request's id. */
export async function withRequestId<T>(request_id: string, fn: () => Promise<T> | T): Promise<T> {
  open_scopes++;
  try {
    return await current.run(request_id, fn);
  } finally {
    if (--open_scopes === 0) current.disable();
  }
}

/** The id of the request this code runs for, if any. */
export function currentRequestId(): string | undefined {
  return open_scopes === 0 ? undefined : current.getStore();
}
