// Receipts over the tunnel: an attested agent sends signed usage receipts in batches (`receipts`); the
// control plane judges each (market/reservations.ts claims them from escrow) and answers `receipts_result`,
// one final verdict per receipt, so the agent forgets it. The tunnel only carries them: it never judges.
import type { ControlToAgent, ReceiptsMessage } from '@easyenclave/protocol';
import type { AgentLink } from './link.js';

export interface ReceiptVerdict {
  key: string;
  seq: number;
  ok: boolean;
  code?: string;
}

/** What takes the receipts (the reservations); answers one verdict per receipt, in order. */
export type ReceiptSink = (receipts: readonly unknown[], source: string) => Promise<ReceiptVerdict[]>;

const KEY_RE = /^[0-9a-f]{64}$/;

export async function handleReceipts(
  sink: ReceiptSink | null,
  send: (link: AgentLink, msg: ControlToAgent) => void,
  link: AgentLink,
  msg: ReceiptsMessage,
): Promise<void> {
  // Only an attested agent's receipts are looked at; the others are answered with nothing (and resent later).
  if (sink === null || !link.attested || link.reg === null) return;
  const verdicts = await sink(msg.receipts, `agent:${link.reg.agent_id}`);
  // Answer only for receipts whose key and sequence can be named back.
  const results = verdicts.filter((v) => KEY_RE.test(v.key) && Number.isSafeInteger(v.seq) && v.seq >= 0);
  if (results.length > 0) send(link, { type: 'receipts_result', results });
}
