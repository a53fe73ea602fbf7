export { Agent, AGENT_VERSION, type AgentOptions } from './agent.js';
export { loadAgentConfig, AgentConfigError, resolveAgentId, type AgentConfig } from './config.js';
export { fullJitterDelay } from './backoff.js';
