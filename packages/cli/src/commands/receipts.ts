// `ee receipts verify <file>`: checks saved usage receipts offline (docs/confidential.md, Receipts): each one's
// shape, that its amount is what its units cost at its unit prices, and its Ed25519 signature by the key it
// names; with --evidence, that this key is the receipt_public_key of the agent's keyset in the evidence the
// client verified before sealing (`ee attestation verify --evidence` checks that evidence itself).
//
// The file holds one signed receipt ({receipt, signature}), an array of them, the value of an EE-Receipt
// trailer (base64url), or a reservation as `GET /v1/reservations/{id}` answers it.
//
// Exit codes: 0 every receipt verifies; 1 one does not; 2 usage errors (unreadable file, nothing to check).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { checkReceipt } from '@easyenclave/sdk';
import { CliError, usageError } from '../errors.js';
import { addExamples, addJsonOption, optsOf } from '../options.js';
import { cellText, formatTable, printResult } from '../output.js';

/** Receipts checked per file; a reservation's view lists at most 100. */
const MAX_RECEIPTS = 4096;
const MAX_FILE_BYTES = 16 * 1024 * 1024;

interface Options {
  evidence?: string;
  json?: boolean;
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_FILE_BYTES) throw usageError(`${what} ${file} is larger than ${MAX_FILE_BYTES} bytes`);
    text = buf.toString('utf8').trim();
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw usageError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  if (/^[A-Za-z0-9_-]+$/.test(text)) text = Buffer.from(text, 'base64url').toString('utf8'); // a trailer value
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw usageError(`${what} ${file} is not JSON`);
  }
}

/** The signed receipts in whatever shape the file holds. */
export function receiptsIn(doc: unknown): unknown[] {
  if (Array.isArray(doc)) return doc;
  if (typeof doc === 'object' && doc !== null) {
    const o = doc as Record<string, unknown>;
    if ('receipt' in o) return [o];
    if (Array.isArray(o.receipts)) return o.receipts.map((r) => (r as { signed?: unknown } | null)?.signed ?? r);
  }
  throw usageError('no receipts found: expected {receipt, signature}, an array of them, or a reservation');
}

export async function verifyReceipts(file: string, o: Options): Promise<void> {
  const receipts = receiptsIn(readJson(file, 'receipt file'));
  if (receipts.length === 0) throw usageError('the file holds no receipts');
  if (receipts.length > MAX_RECEIPTS) throw usageError(`at most ${MAX_RECEIPTS} receipts per file`);
  let key: string | undefined;
  if (o.evidence !== undefined) {
    const ev = readJson(o.evidence, 'evidence file') as { keyset?: { receipt_public_key?: unknown } | null };
    const k = ev?.keyset?.receipt_public_key;
    if (typeof k !== 'string') throw usageError(`evidence ${o.evidence} carries no keyset.receipt_public_key`);
    key = k;
  }
  const rows: {
    seq: number | null;
    reservation: string;
    amount_micro_usd: number | null;
    ok: boolean;
    reason: string;
  }[] = [];
  for (const r of receipts) {
    const c = await checkReceipt(r);
    if (!c.ok) {
      rows.push({ seq: null, reservation: '', amount_micro_usd: null, ok: false, reason: c.reason });
      continue;
    }
    const rc = c.receipt;
    const wrongKey = key !== undefined && rc.key !== key;
    rows.push({
      seq: rc.seq,
      reservation: rc.reservation_id,
      amount_micro_usd: rc.amount_micro_usd,
      ok: !wrongKey,
      reason: wrongKey ? `signed by ${rc.key}, not the evidence's receipt key ${key}` : '',
    });
  }
  const ok = rows.every((r) => r.ok);
  const total = rows.reduce((a, r) => a + (r.ok ? (r.amount_micro_usd ?? 0) : 0), 0);
  printResult(
    { ok, receipts: rows, total_micro_usd: total, key_checked: key ?? null },
    {
      json: o.json,
      table: (d) =>
        `${formatTable(d.receipts, [
          { header: 'SEQ', value: (r) => r.seq, align: 'right' },
          { header: 'RESERVATION', value: (r) => r.reservation },
          { header: 'MICRO-USD', value: (r) => r.amount_micro_usd, align: 'right' },
          { header: 'OK', value: (r) => r.ok },
          { header: 'REASON', value: (r) => r.reason },
        ])}\n${cellText(ok ? `OK: ${rows.length} receipt(s), ${total} micro-USD` : 'FAILED')}${key === undefined ? '\n(no --evidence: the signing key was not compared with an attested keyset)' : ''}`,
    },
  );
  if (!ok) process.exitCode = 1;
}

export function registerReceipts(program: Command): void {
  const receipts = program.command('receipts').description('signed usage receipts of sealed requests');
  const verify = receipts
    .command('verify <file>')
    .description('verify saved usage receipts offline: shape, amount, signature, and (with --evidence) the signing key')
    .option(
      '--evidence <file>',
      "the agent's evidence you verified (ee attestation fetch --out, or a reservation's evidence)",
    );
  addJsonOption(verify);
  addExamples(verify, [
    'ee receipts verify receipt.json --evidence evidence.json',
    'ee receipts verify reservation.json --json',
  ]);
  verify.addHelpText('after', '\nExit codes: 0 every receipt verifies; 1 one does not; 2 usage errors.');
  verify.action(async (file: string, _o: unknown, cmd: Command) => verifyReceipts(file, optsOf<Options>(cmd)));
}
