// The audit log's hash chain. Each row commits to its predecessor, so rewriting or dropping any row changes
// every later hash; the head row (one per database) holds the newest (seq, hash).
import { createHash } from 'node:crypto';
import type { LedgerAuditTable } from './schema.js';

export type AuditKind = 'account' | 'transfer' | 'expiry' | 'failed' | 'identity';

export interface AuditEntry {
  kind: AuditKind;
  payload: string;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

export function auditHash(prev_hash: string, seq: number, at_ms: number, kind: string, payload: string): string {
  return createHash('sha256').update(`${prev_hash}|${seq}|${at_ms}|${kind}|${payload}`, 'utf8').digest('hex');
}

/** Extends the chain from `head` with `entries`; returns the rows to insert and the new head. */
export function extendChain(
  head: ChainHead,
  entries: readonly AuditEntry[],
  at_ms: number,
): { rows: LedgerAuditTable[]; head: ChainHead } {
  const rows: LedgerAuditTable[] = [];
  let { seq, hash } = head;
  for (const e of entries) {
    seq += 1;
    const next = auditHash(hash, seq, at_ms, e.kind, e.payload);
    rows.push({ seq, at_ms, kind: e.kind, payload: e.payload, prev_hash: hash, hash: next });
    hash = next;
  }
  return { rows, head: { seq, hash } };
}
