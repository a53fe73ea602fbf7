// The one Database type: every table on the control plane's connection (the store's agent records, the ledger's
// and the market's tables). Each feature keeps its table definitions next to its queries; this is where they
// meet, so a query or a transaction that spans features (a market operation inside the ledger's transaction) is
// typed without casts.
import type { Kysely } from 'kysely';
import type { LedgerDatabase } from '../ledger-store/schema.js';
import type { DeploymentsDatabase } from '../deployments/store/schema.js';
import type { JobsDatabase } from '../jobs/store/schema.js';
import type { MarketDatabase } from '../market/store/schema.js';
import type { ReservationDatabase } from '../market/store/reservation-schema.js';
import type { StoreTables } from './schema.js';

export interface Database
  extends StoreTables, LedgerDatabase, MarketDatabase, ReservationDatabase, JobsDatabase, DeploymentsDatabase {}

export type Db = Kysely<Database>;
/** A connection inside an open transaction: Kysely's Transaction, or the connection a writer ran BEGIN on (SQLite's
 *  BEGIN IMMEDIATE). Statements on it belong to that transaction. */
export type Tx = Kysely<Database>;
