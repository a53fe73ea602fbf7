// The agent's answer to an attestation challenge: a quote over report_data that binds the nonce to the agent's
// keyset. A client's relayed nonce is quoted in the relay domain and never signed for a connection; the control
// plane's own challenges in the tunnel domain, with a proof of possession over the connection's session id. So
// evidence a client obtains can never answer a control-plane challenge, here or on another connection.
import type { Logger } from 'pino';
import type { AttestRequestMessage, AttestResponseMessage } from '@easyenclave/protocol';
import {
  computeReportData,
  publicKeyset,
  REPORT_DATA_DOMAINS,
  signPossession,
  type AgentKeys,
  type QuoteProvider,
} from '@easyenclave/attestation';

/** The response to `req` on a connection whose session id is `session_id` (null before `registered`); null when
 *  there is none to give (logged): a tunnel challenge before registration, or a quote that failed. */
export async function answerChallenge(
  keys: AgentKeys,
  provider: QuoteProvider,
  req: AttestRequestMessage,
  session_id: string | null,
  log: Logger,
): Promise<AttestResponseMessage | null> {
  const relayed = req.reason === 'client';
  if (!relayed && session_id === null) {
    log.error('attest_request before registered: no session id to prove possession with');
    return null;
  }
  const keyset = publicKeyset(keys);
  const domain = relayed ? REPORT_DATA_DOMAINS.relay : REPORT_DATA_DOMAINS.tunnel;
  const report_data = computeReportData(domain, Buffer.from(req.nonce, 'hex'), keyset);
  try {
    const quote = await provider.getQuote(report_data);
    const m = (provider as { measurements?: Record<string, string> }).measurements ?? {};
    return {
      type: 'attest_response',
      nonce: req.nonce,
      quote: quote.toString('base64'),
      report_data: report_data.toString('hex'),
      measurements: { ...m },
      keyset,
      ...(session_id !== null && !relayed ? { pop_signature: signPossession(keys, req.nonce, session_id) } : {}),
    };
  } catch (err) {
    log.error({ err: (err as Error).message }, 'could not produce a quote');
    return null;
  }
}
