// Public API of @easyenclave/control-plane (light: loading it starts nothing and loads no server code).
// Amounts, periods, tiers and account ids as the control plane parses them, so a client checks its input
// exactly as the server will, and the configuration loader. The server itself is `./server`, the SIGHUP
// handoff `./handoff`, the offline ledger check `./ledger-verify`: each loaded only by what needs it.
export { AmountError, formatUsd, MAX_AMOUNT_MICRO, MICRO_PER_USD, parseAmount } from './ledger/amount.js';
export { IDENTITY_ID_PATTERN } from './ledger/chart.js';
export { HOUR_MS, parsePeriod } from './market/period.js';
export { TIERS, type Tier } from './market/policy.js';
export { ConfigError, CONTROL_PLANE_ENV_VARS, loadControlPlaneConfig, type ControlPlaneConfig } from './config.js';
