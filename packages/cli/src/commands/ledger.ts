// `ee ledger verify`: checks the ledger stored by a control plane (DESIGN §4) without changing it — replays the
// journal, recomputes every balance, checks the invariants and the audit hash chain (ledger-store/verify.ts).
// The database is the control plane's: --db / --database-url, else EE_DATABASE_URL, else EE_DB_PATH (same
// defaults). It is opened read-only and never migrated.
//
// Exit codes: 0 the ledger verifies; 1 a discrepancy, or the database cannot be read or holds no ledger;
// 2 usage errors.
import type { Command } from 'commander';
import { ConfigError, formatUsd, loadControlPlaneConfig } from '@easyenclave/control-plane';
import type { LedgerVerifyReport, ReadOnlyTarget } from '@easyenclave/control-plane/ledger-verify';
import { fail } from '../process.js';

interface VerifyOptions {
  db?: string;
  databaseUrl?: string;
  json?: boolean;
}

/** Flags first, then the control plane's own variables and defaults (validated by its config parser). */
function target(o: VerifyOptions): ReadOnlyTarget {
  if (o.db !== undefined && o.databaseUrl !== undefined) fail('give --db or --database-url, not both', 2);
  let env: { db_path: string; database_url: string | undefined };
  try {
    env = loadControlPlaneConfig({
      EE_DB_PATH: o.db ?? process.env.EE_DB_PATH,
      EE_DATABASE_URL: o.db !== undefined ? undefined : (o.databaseUrl ?? process.env.EE_DATABASE_URL),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      const flag = err.variable === 'EE_DB_PATH' ? '--db' : '--database-url';
      fail(`${err.message.replace(err.variable, `${flag} / ${err.variable}`)}`, 2);
    }
    throw err;
  }
  if (env.database_url !== undefined) return { dialect: 'postgres', url: env.database_url };
  if (env.db_path === ':memory:') fail('an in-memory database (:memory:) has nothing to verify; give --db <file>', 2);
  return { dialect: 'sqlite', path: env.db_path };
}

/** For messages: the URL without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function printSummary(where: string, r: LedgerVerifyReport): void {
  const usd = (s: string) => formatUsd(BigInt(s));
  const lines = [
    ['Result', r.ok ? 'OK' : `FAILED (${r.errors.length} discrepanc${r.errors.length === 1 ? 'y' : 'ies'})`],
    ['Database', where],
    ['Accounts', String(r.accounts)],
    ['Journal rows', String(r.journal_rows)],
    ['Open locks', String(r.pending_open)],
    ['Audit rows', String(r.audit_rows)],
    ['Audit head', `seq ${r.head.seq} ${r.head.hash}`],
    ['Posted', `debits ${usd(r.totals.debits_posted)}, credits ${usd(r.totals.credits_posted)}`],
    ['Pending', `debits ${usd(r.totals.debits_pending)}, credits ${usd(r.totals.credits_pending)}`],
    ['Checked at', new Date(r.checked_at_ms).toISOString()],
  ];
  for (const [k, v] of lines) process.stdout.write(`${k!.padEnd(13)}${v}\n`);
  if (r.errors.length > 0) process.stdout.write(`Discrepancies:\n${r.errors.map((e) => `  - ${e}\n`).join('')}`);
}

async function verifyCommand(o: VerifyOptions): Promise<void> {
  const t = target(o);
  const where = t.dialect === 'postgres' ? `postgres ${redactUrl(t.url)}` : `sqlite ${t.path}`;
  // Loaded here, not at start-up: it brings the database drivers, which no other command needs.
  const { openReadOnly, verifyLedger } = await import('@easyenclave/control-plane/ledger-verify');
  let db: ReturnType<typeof openReadOnly>['db'];
  try {
    db = openReadOnly(t).db;
  } catch (err) {
    fail(`cannot open ${where}: ${(err as Error).message}`);
  }
  let report: LedgerVerifyReport;
  try {
    report = await verifyLedger(db, t.dialect);
  } catch (err) {
    const message = (err as Error).message;
    fail(`${where}: ${t.dialect === 'postgres' ? message.replaceAll(t.url, redactUrl(t.url)) : message}`);
  } finally {
    await db.destroy().catch(() => undefined);
  }
  if (o.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else printSummary(where, report);
  process.exitCode = report.ok ? 0 : 1;
}

export function registerLedger(program: Command): void {
  const ledger = program.command('ledger').description("check the control plane's credit ledger");
  ledger
    .command('verify')
    .description(
      'replay the journal, recompute every balance, check the invariants and the audit hash chain (read-only)',
    )
    .option('--db <path>', "SQLite database file (default: EE_DB_PATH, or the control plane's default path)")
    .option('--database-url <url>', 'PostgreSQL URL (default: EE_DATABASE_URL)')
    .option('--json', 'print the report as one JSON object')
    .action((o: VerifyOptions) => verifyCommand(o));
}
