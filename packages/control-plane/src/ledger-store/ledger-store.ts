// The ledger as the rest of the control plane sees it: the pure engine (../ledger) run by a group-committing
// single writer against SQLite or PostgreSQL. Reads go straight to the database and see committed state.
import { createAccounts, createTransfers } from '../ledger/engine.js';
import { PLATFORM_ACCOUNTS } from '../ledger/chart.js';
import type {
  Account,
  AccountInput,
  AccountResult,
  JournalEntry,
  TransferInput,
  TransferResult,
} from '../ledger/types.js';
import type { Db } from '../store/database.js';
import { runMigrations, type StoreDialect } from '../store/migrations.js';
import type { CommittedEntry, LedgerOp } from './batch.js';
import { LEDGER_MIGRATIONS } from './migrations.js';
import { accountFromRow, entryFromJournalRow } from './rows.js';
import { ledgerWriter, type LedgerWriter } from './writer.js';
import { currentRequestId } from '../correlation.js';

export interface HistoryPage {
  entries: { seq: number; entry: JournalEntry }[];
  /** Pass as `before_seq` for the next (older) page; null at the end. */
  next_before_seq: number | null;
}

export const MAX_HISTORY_PAGE = 500;
/** Transfers per request: bounds one operation's share of a batch. */
export const MAX_TRANSFERS_PER_OP = 128;

/** A committed journal entry with the id of the request whose operation made it (none for the expiry sweep and
 *  for work no request started, such as the settlement scheduler). */
export interface CommittedMovement {
  readonly entry: JournalEntry;
  readonly request_id: string | undefined;
}

export class LedgerStore {
  readonly writer: LedgerWriter;
  /** Operation → the request it was submitted for (weak: forgotten with the operation). */
  readonly #requestOf = new WeakMap<LedgerOp<unknown>, string>();
  #observers: ((movements: readonly CommittedMovement[]) => void)[] = [];

  private constructor(
    readonly db: Db,
    readonly dialect: StoreDialect,
    /** The ledger's clock (batches' now_ms; API keys' expiry is checked against it). */
    readonly now: () => number,
  ) {
    this.writer = ledgerWriter(db, dialect, now, (entries, ops) => this.#committed(entries, ops));
  }

  /** Migrates the ledger tables and creates the platform accounts (idempotent). `db` is the store's connection. */
  static async open(db: Db, dialect: StoreDialect, now: () => number): Promise<LedgerStore> {
    await runMigrations(db, dialect, LEDGER_MIGRATIONS);
    const ledger = new LedgerStore(db, dialect, now);
    const results = await ledger.createAccounts(PLATFORM_ACCOUNTS);
    const bad = results.filter((r) => r !== 'ok' && r !== 'exists');
    if (bad.length > 0) throw new Error(`ledger: platform accounts could not be created: ${bad.join(', ')}`);
    return ledger;
  }

  /** `request_id`: the request the operation is submitted for (its money lines name it); a route passes its own. */
  submit<T>(op: LedgerOp<T>, request_id: string | undefined = currentRequestId()): Promise<T> {
    if (request_id !== undefined) this.#requestOf.set(op, request_id);
    return this.writer.submit<T>(op);
  }

  /** Calls `observer` after each commit with the journal entries it made (logs and metrics; must not throw). */
  onCommitted(observer: (movements: readonly CommittedMovement[]) => void): void {
    this.#observers.push(observer);
  }

  #committed(entries: readonly CommittedEntry[], ops: readonly LedgerOp<unknown>[]): void {
    if (entries.length === 0 || this.#observers.length === 0) return;
    const movements = entries.map((e) => ({
      entry: e.entry,
      request_id: e.op < 0 ? undefined : this.#requestOf.get(ops[e.op]!),
    }));
    for (const observer of this.#observers) observer(movements);
  }

  createAccounts(inputs: readonly AccountInput[]): Promise<AccountResult[]> {
    return this.submit({
      accounts: inputs.map((a) => a.id),
      transfers: [],
      apply: ({ state }) => createAccounts(state, inputs),
    });
  }

  /** Applies `inputs` as one request (linked chains inside it work as in the engine). */
  createTransfers(inputs: readonly TransferInput[]): Promise<TransferResult[]> {
    if (inputs.length > MAX_TRANSFERS_PER_OP)
      throw new RangeError(`at most ${MAX_TRANSFERS_PER_OP} transfers per request`);
    return this.submit(transfersOp(inputs, (results) => results));
  }

  async account(id: string): Promise<Account | undefined> {
    const row = await this.db.selectFrom('ledger_accounts').selectAll().where('id', '=', id).executeTakeFirst();
    return row && accountFromRow(row);
  }

  async transfer(id: string): Promise<JournalEntry | undefined> {
    const row = await this.db.selectFrom('ledger_journal').selectAll().where('transfer_id', '=', id).executeTakeFirst();
    return row && entryFromJournalRow(row);
  }

  /** Journal entries touching any of `accounts`, newest first. */
  async history(accounts: readonly string[], opts: { limit: number; before_seq?: number }): Promise<HistoryPage> {
    const limit = Math.max(1, Math.min(MAX_HISTORY_PAGE, opts.limit));
    const rows = await this.db
      .selectFrom('ledger_journal')
      .selectAll()
      .where((eb) => eb.or([eb('debit_account', 'in', accounts), eb('credit_account', 'in', accounts)]))
      .$if(opts.before_seq !== undefined, (q) => q.where('seq', '<', opts.before_seq!))
      .orderBy('seq', 'desc')
      .limit(limit + 1)
      .execute();
    const page = rows.slice(0, limit);
    return {
      entries: page.map((r) => ({ seq: Number(r.seq), entry: entryFromJournalRow(r) })),
      next_before_seq: rows.length > limit ? Number(page[page.length - 1]!.seq) : null,
    };
  }

  /** Waits for queued writes, then stops accepting new ones. The connection belongs to the store. */
  close(): Promise<void> {
    return this.writer.close();
  }
}

/** An operation applying `inputs` and mapping the engine's results (inside the transaction) to T. */
export function transfersOp<T>(
  inputs: readonly TransferInput[],
  map: (results: TransferResult[], ctx: Parameters<LedgerOp<T>['apply']>[0]) => T,
): LedgerOp<T> {
  const accounts = new Set<string>();
  const transfers = new Set<string>();
  for (const t of inputs) {
    accounts.add(t.debit_account);
    accounts.add(t.credit_account);
    transfers.add(t.id);
    if (t.pending_id !== undefined) transfers.add(t.pending_id);
  }
  return {
    accounts: [...accounts],
    transfers: [...transfers],
    apply: (ctx) => map(createTransfers(ctx.state, inputs, ctx.now_ms), ctx),
  };
}
