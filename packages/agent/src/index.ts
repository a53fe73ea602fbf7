export { Agent, AGENT_VERSION, type AgentOptions } from './agent.js';
export { loadAgentConfig, AgentConfigError, resolveAgentId, type AgentConfig } from './config.js';
export { fullJitterDelay } from './backoff.js';
export {
  ConfigfsQuoteProvider,
  hasConfigfsTsm,
  NoTdxError,
  selectQuoteProvider,
  type QuoteProviderChoice,
} from './quote-configfs.js';
