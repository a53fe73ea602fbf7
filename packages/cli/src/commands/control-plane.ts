import type { Command } from 'commander';
import { fail, onShutdownSignals } from '../process.js';

export function registerControlPlane(program: Command): void {
  program
    .command('control-plane')
    .description(
      'run the control plane (API on EE_CONTROL_PORT, app proxy on EE_PROXY_PORT); configured by EE_* environment variables',
    )
    .addHelpText(
      'after',
      '\nConfiguration: see the table in README.md (EE_CONTROL_PORT, EE_PROXY_PORT, EE_DB_PATH, EE_DATABASE_URL, EE_ADMIN_TOKEN, ...).' +
        '\nSignals: SIGTERM/SIGINT drain in-flight requests (GOAWAY to agents) and exit.' +
        '\n         SIGHUP restarts with zero downtime: a new process (the program on disk now) inherits the listening' +
        '\n         sockets, and this one drains and exits once the new one is serving.' +
        '\n         SIGUSR2 reloads the attestation policy (EE_ALLOWLIST_ASSET) in place and re-attests every agent.',
    )
    .action(async () => {
      // Loaded here, not at the top: the server's modules would slow down every other `ee` command.
      const { ConfigError, loadControlPlaneConfig } = await import('@easyenclave/control-plane');
      const { startControlPlane } = await import('@easyenclave/control-plane/server');
      const { announceReady, inheritedListenFds, spawnSuccessor } = await import('@easyenclave/control-plane/handoff');
      let config;
      try {
        config = loadControlPlaneConfig(process.env);
      } catch (err) {
        if (err instanceof ConfigError) fail(`invalid configuration: ${err.message}`, 2);
        throw err;
      }
      const listen_fds = inheritedListenFds();
      // Attestation configuration (root CA override, collateral file, policy file) is checked at start-up: exit 2.
      const cp = await startControlPlane(config, listen_fds ? { listen_fds } : {}).catch((err: unknown) => {
        if (err instanceof ConfigError) fail(`invalid configuration: ${err.message}`, 2);
        throw err;
      });
      process.stderr.write(
        `easyenclave control plane: api ${cp.api_url}  app proxy ${cp.proxy_url}${listen_fds ? ' (inherited sockets)' : ''}\n`,
      );
      announceReady();
      onShutdownSignals(() => cp.shutdown());
      // SIGUSR2: re-read the attestation policy in place (writing the file does the same); every connected
      // agent is re-attested against it. A policy that fails to parse is logged and the old one stays.
      process.on('SIGUSR2', () => {
        process.stderr.write('ee: SIGUSR2: reloading the attestation policy\n');
        void Promise.resolve(cp.reloadPolicy()).catch((err: Error) =>
          process.stderr.write(`ee: policy reload failed: ${err.message}\n`),
        );
      });
      let restarting = false;
      process.on('SIGHUP', () => {
        if (restarting) return;
        restarting = true;
        process.stderr.write('ee: SIGHUP: starting a successor on the same sockets\n');
        spawnSuccessor(cp.listening_fds()).then(
          async (pid) => {
            process.stderr.write(`ee: successor ${pid} is serving; draining this process\n`);
            await cp.shutdown();
            process.exit(0);
          },
          (err: Error) => {
            // The old process keeps serving: a failed restart must not take the service down.
            restarting = false;
            process.stderr.write(`ee: restart failed, still serving: ${err.message}\n`);
          },
        );
      });
    });
}
