// The worker side of receipt-verify.ts: checks batches of Ed25519 signatures over given bytes with node:crypto
// (parsed keys cached), off the control plane's main thread. Input: {id, items: [key hex, bytes, sig hex][]};
// output: {id, ok: boolean[]}.
import { parentPort } from 'node:worker_threads';
import { verifySignature } from './receipt-verify-core.js';

parentPort!.on('message', (m: { id: number; items: [string, Uint8Array, string][] }) => {
  parentPort!.postMessage({ id: m.id, ok: m.items.map(([k, b, s]) => verifySignature(k, b, s)) });
});
