export * from './limits.js';
export * from './frames.js';
export * from './head.js';
export * from './control.js';
export * from './reset-codes.js';
export { MuxSession, type SessionOptions, type SendFn } from './mux/session.js';
export { MuxStream, QueueBudget } from './mux/stream.js';
export { tickBatched, TickBatcher, type Corkable } from './batch.js';
// Sealed messages (./seal/index.js, browser-safe), their Node primitives (./seal-node.js) and signed records
// (./signed-record.js) are imported by path, so a process that never seals does not load HPKE at start-up.
