import type { Command } from 'commander';
import { ConfigError, loadControlPlaneConfig } from '@easyenclave/control-plane/config';
import { startControlPlane } from '@easyenclave/control-plane/server';
import { fail, onShutdownSignals } from '../process.js';

export function registerControlPlane(program: Command): void {
  program
    .command('control-plane')
    .description('run the control plane (API on EE_CONTROL_PORT, app proxy on EE_PROXY_PORT); configured by EE_* environment variables')
    .addHelpText('after', '\nConfiguration: see the table in README.md (EE_CONTROL_PORT, EE_PROXY_PORT, EE_DB_PATH, EE_DATABASE_URL, EE_ADMIN_TOKEN, ...).\nSIGTERM/SIGINT drain in-flight requests (GOAWAY to agents) before exiting.')
    .action(async () => {
      let config;
      try {
        config = loadControlPlaneConfig(process.env);
      } catch (err) {
        if (err instanceof ConfigError) fail(`invalid configuration: ${err.message}`, 2);
        throw err;
      }
      const cp = await startControlPlane(config);
      process.stderr.write(`easyenclave control plane: api ${cp.api_url}  app proxy ${cp.proxy_url}\n`);
      onShutdownSignals(() => cp.shutdown());
    });
}
