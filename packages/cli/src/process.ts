// Process-level helpers shared by the long-running commands.
import { redact } from './errors.js';

/** Prints a message and exits: 1 for failures, 2 for usage/configuration errors. */
export function fail(message: string, code = 1): never {
  process.stderr.write(`ee: ${redact(message)}\n`);
  process.exit(code);
}

/** First SIGTERM/SIGINT runs a graceful shutdown; a second one exits at once. */
export function onShutdownSignals(shutdown: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write(`ee: ${signal}: shutting down gracefully\n`);
    shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`ee: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
