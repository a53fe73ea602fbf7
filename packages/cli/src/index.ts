export { fail, onShutdownSignals } from './process.js';
