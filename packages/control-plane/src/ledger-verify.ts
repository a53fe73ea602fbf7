// Public entry `@easyenclave/control-plane/ledger-verify`: checking a control plane's ledger offline, from its
// database opened read-only (what `ee ledger verify` runs).
export { LedgerMissingError, verifyLedger, type LedgerVerifyReport } from './ledger-store/verify.js';
export { openReadOnly, type ReadOnlyTarget } from './ledger-store/open-readonly.js';
