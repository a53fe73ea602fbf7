export * from './limits.js';
export * from './frames.js';
export * from './head.js';
export * from './control.js';
export * from './reset-codes.js';
export { MuxSession, type SessionOptions, type SendFn } from './mux/session.js';
export { MuxStream } from './mux/stream.js';
export { tickBatched, TickBatcher, type Corkable } from './batch.js';
