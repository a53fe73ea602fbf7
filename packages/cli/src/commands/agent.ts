import type { Command } from 'commander';
import { Agent, AgentConfigError, loadAgentConfig } from '@easyenclave/agent';
import { fail, onShutdownSignals } from '../process.js';

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run an agent: dial the control plane (EE_CONTROL_WS), register EE_APP_NAME and serve EE_BACKEND_URL through the tunnel')
    .addHelpText('after', '\nRequired: EE_CONTROL_WS, EE_REPO, EE_RELEASE_TAG, EE_APP_NAME, EE_NETWORK, EE_BACKEND_URL.\nOptional: EE_AGENT_ID (generated and kept in EE_AGENT_STATE_DIR if absent), EE_HEALTH_INTERVAL_SEC, EE_HEALTH_PATH, EE_DRAIN_TIMEOUT_SEC, EE_MAX_STREAMS, EE_LOG_LEVEL.')
    .action(() => {
      let config;
      try {
        config = loadAgentConfig(process.env);
      } catch (err) {
        if (err instanceof AgentConfigError) fail(`invalid configuration: ${err.message}`, 2);
        throw err;
      }
      const agent = new Agent(config);
      agent.start();
      onShutdownSignals(() => agent.stop());
    });
}
