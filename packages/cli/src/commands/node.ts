// `ee node run`: the node launcher (docs/workloads.md), configured like an agent.
import type { Command } from 'commander';
import { fail, onShutdownSignals } from '../process.js';

export function registerNode(program: Command): void {
  const node = program.command('node').description("run this machine's node launcher");
  node
    .command('run')
    .description(
      'run the node launcher: dial the control plane (EE_CONTROL_WS) as the node EE_NODE_TOKEN names, attest, report capacity and run assigned jobs in podman',
    )
    .addHelpText(
      'after',
      '\nRequired: EE_CONTROL_WS, EE_NETWORK, and EE_NODE_TOKEN on sandbox networks (sealed networks bind by the quote).\n' +
        'Optional: EE_CONTAINER_RUNTIME, EE_CONTAINER_GLOBAL_ARGS, EE_CONTAINER_RUN_ARGS, EE_LAUNCHER_VCPUS, EE_LAUNCHER_MEMORY_MIB,\n' +
        'EE_LAUNCHER_ID, EE_LAUNCHER_STATE_DIR, EE_HEALTH_INTERVAL_SEC, EE_TSM_PATH, EE_LOG_LEVEL (docs/workloads.md).',
    )
    .action(async () => {
      // Loaded here: podman and the agent would slow down every other `ee` command.
      const { LauncherNode, LauncherConfigError } = await import('@easyenclave/launcher');
      const { AgentConfigError, NoTdxError } = await import('@easyenclave/agent');
      let launcher;
      try {
        launcher = await LauncherNode.start(process.env);
      } catch (err) {
        if (err instanceof LauncherConfigError || err instanceof AgentConfigError)
          fail(`invalid configuration: ${err.message}`, 2);
        if (err instanceof NoTdxError) fail(err.message, 1);
        fail(`the launcher could not start: ${(err as Error).message}`, 1);
      }
      onShutdownSignals(() => launcher.stop());
    });
}
