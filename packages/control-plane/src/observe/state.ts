// One structured log line per market state change that moves no money by itself (a node banned for fraud, an
// abuse report authorised), with the ids involved and the request that caused it.
import { currentRequestId } from '../correlation.js';

export type StateChange = 'node_banned' | 'abuse_authorised';

/** Any pino-style logger (the control plane's, or a request's child logger). */
interface InfoLog {
  info(fields: object, msg: string): void;
}

export function logStateChange(log: InfoLog, change: StateChange, ids: Record<string, string | number | null>): void {
  log.info({ event: 'state', change, ...ids, request_id: currentRequestId() }, `state: ${change}`);
}
