// An agent's control messages (text frames), each to the controller that handles it: `register` to
// registration.ts (once), answers to challenges to attestation-flow.ts, usage receipts to receipts.ts, health to
// upkeep.ts. Nothing but `register` before registration; a malformed message or a failed handler closes the link
// (through the hub's close port: the hub stays the one place that closes agent sockets).
import type { Logger } from 'pino';
import { CloseCode, parseAgentMessage, type ControlToAgent } from '@easyenclave/protocol';
import type { AgentLink } from './link.js';
import type { AttestationFlow } from './attestation-flow.js';
import { handleReceipts, type ReceiptSink } from './receipts.js';
import type { Registrar } from './registration.js';
import type { Upkeep } from './upkeep.js';

export interface DispatchPort {
  registrar: Registrar;
  attestation: AttestationFlow;
  upkeep: Upkeep;
  /** None: receipts are not accepted. */
  receipts: ReceiptSink | null;
  send(link: AgentLink, msg: ControlToAgent): void;
  close(link: AgentLink, code: number, reason: string): void;
  log: Logger;
}

export async function dispatchControl(port: DispatchPort, link: AgentLink, text: string): Promise<void> {
  try {
    const parsed = parseAgentMessage(text);
    if (!parsed.ok) {
      // Tell an agent that has not registered yet why, so its operator sees it in the agent's log.
      if (link.reg === null) port.send(link, { type: 'error', code: 'invalid_message', message: parsed.error });
      return port.close(link, CloseCode.PROTOCOL_ERROR, parsed.error);
    }
    const msg = parsed.message;
    if (msg.type === 'register') {
      if (link.reg !== null) return port.close(link, CloseCode.PROTOCOL_ERROR, 'already registered');
      await port.registrar.register(link, msg);
    } else if (link.reg === null) {
      port.close(link, CloseCode.NOT_REGISTERED, `send register before ${msg.type}`);
    } else if (msg.type === 'attest_response') {
      await port.attestation.onResponse(link, msg);
    } else if (msg.type === 'receipts') {
      await handleReceipts(port.receipts, port.send, link, msg);
    } else {
      await port.upkeep.onHealth(link, msg.status, msg.detail);
    }
  } catch (err) {
    port.log.error({ err, agent_id: link.agent_id }, 'control message handling failed');
    port.close(link, CloseCode.INTERNAL, 'internal error');
  }
}
