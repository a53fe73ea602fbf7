import type { Command } from 'commander';
import type { Agent } from '@easyenclave/agent';
import { fail, onShutdownSignals } from '../process.js';

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description(
      'run an agent: dial the control plane (EE_CONTROL_WS), register EE_APP_NAME and serve EE_BACKEND_URL through the tunnel',
    )
    .addHelpText(
      'after',
      '\nRequired: EE_CONTROL_WS, EE_REPO, EE_RELEASE_TAG, EE_APP_NAME, EE_NETWORK, EE_BACKEND_URL.\nOptional: EE_AGENT_ID (generated and kept in EE_AGENT_STATE_DIR if absent), EE_HEALTH_INTERVAL_SEC, EE_HEALTH_PATH, EE_DRAIN_TIMEOUT_SEC, EE_MAX_STREAMS, EE_LOG_LEVEL,\nEE_TSM_PATH (configfs-tsm report directory, default /sys/kernel/config/tsm/report: TDX quotes when it exists; without it\nthe agent uses sandbox attestation on sandbox-1 and refuses to start on a sealed network).',
    )
    .action(async () => {
      // Loaded here, not at the top: the agent's modules would slow down every other `ee` command.
      const { Agent, AgentConfigError, loadAgentConfig, NoTdxError } = await import('@easyenclave/agent');
      let config;
      try {
        config = loadAgentConfig(process.env);
      } catch (err) {
        if (err instanceof AgentConfigError) fail(`invalid configuration: ${err.message}`, 2);
        throw err;
      }
      let agent: Agent;
      try {
        agent = new Agent(config);
      } catch (err) {
        if (err instanceof NoTdxError) fail(err.message, 1);
        throw err;
      }
      agent.start();
      onShutdownSignals(() => agent.stop());
    });
}
