// Reservations and receipts (issue 13; docs/confidential.md "Money flow"): the thin shell around the pure core
// (reservation.ts) and its ledger operations (ops-reservation.ts). It records the receipt keys of attested
// agents, picks the node and agent for a new reservation through the market's routing, runs every mutation of
// one reservation one at a time in this process (its row is locked FOR UPDATE across replicas), verifies
// receipt signatures outside the transaction, and sweeps expiry, period boundaries and zero tolerance.
import { canonicalRecordJson } from '@easyenclave/protocol/signed-record';
import { checkReceipt, UnitPrices } from '@easyenclave/protocol/receipt';
import type { AgentLink } from '../tunnel/link.js';
import type { ReceiptVerdict } from '../tunnel/receipts.js';
import type { Market } from './market.js';
import {
  closeReservationOp,
  createReservationOp,
  rollReservationOp,
  stateOf,
  type CloseResult,
  type CreateReservationResult,
} from './ops-reservation.js';
import { claimReceiptsOp, type ReceiptOutcome, type VerifiedReceipt } from './ops-receipts.js';
import { periodIndex } from './period.js';
import { MAX_RECEIPTS_PER_OP, RECEIPT_GRACE_MS, zeroToleranceReason, type ReceiptRefusal } from './reservation.js';
import { getReservation, nodeIncidents, RESERVATION_MIGRATIONS } from './store/reservations.js';
import type { Db } from '../store/database.js';
import { runMigrations } from '../store/index.js';
import { SignatureVerifier } from './receipt-verify.js';
import type { ApplyContext } from '../ledger-store/batch.js';

/** Candidate nodes a reservation re-checks under their row locks, best first. */
const MAX_RESERVATION_CANDIDATES = 16;
/** Open reservations handled per sweep and kind (expiry, roll, zero tolerance). */
const SWEEP_LIMIT = 500;
/** Receipts in one call of `claim` (a tunnel message carries at most MAX_RECEIPTS_PER_BATCH). */
export const MAX_RECEIPTS_PER_CLAIM = 4096;

export interface ReceiptClaim {
  /** Index in the input. */
  index: number;
  outcome: ReceiptOutcome | { ok: false; code: ReceiptRefusal; detail: string };
}

export interface ReservationCandidate {
  id: string;
  provider: string;
  agent_id: string;
  unit_prices: UnitPrices;
  /** The agent's attested keyset: the client seals to hpke_public_key and checks receipts by receipt_public_key. */
  keyset: { hpke_public_key: string; receipt_public_key: string };
}

export interface ReservationsOptions {
  /** Called once per judged receipt with `accepted` or its refusal code (the control plane's metrics). */
  onOutcome?: (outcome: string) => void;
}

export class Reservations {
  readonly db: Db;
  /** reservation id → the tail of its chain of mutations in this process. */
  #serial = new Map<string, Promise<unknown>>();
  /** Receipt signatures are checked on worker threads (receipt-verify.ts). */
  readonly #signatures = new SignatureVerifier();
  readonly onOutcome: ((outcome: string) => void) | null;
  /** Receipts accepted and refused since start, by outcome (for /metrics and the bench). */
  readonly counts = { accepted: 0, refused: 0 };

  private constructor(
    readonly market: Market,
    opts: ReservationsOptions,
  ) {
    this.db = market.db;
    this.onOutcome = opts.onOutcome ?? null;
    // Each attested agent's receipt key is recorded once the market has bound it to its node.
    market.onAgentAttested((link) => this.recordKey(link));
  }

  static async open(market: Market, opts: ReservationsOptions = {}): Promise<Reservations> {
    await runMigrations(market.deps.store.db, market.deps.store.dialect, RESERVATION_MIGRATIONS);
    return new Reservations(market, opts);
  }

  get now(): number {
    return this.market.now;
  }

  /** Runs `fn` after every earlier mutation of reservation `id` in this process. */
  #one<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#serial.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.#serial.set(id, tail);
    void tail.then(() => {
      if (this.#serial.get(id) === tail) this.#serial.delete(id);
    });
    return next;
  }

  // ---------- Keys of attested agents ----------

  /** After each successful attestation of a bound agent: its receipt key is attested for its node from now. */
  async recordKey(link: AgentLink): Promise<void> {
    const reg = link.reg;
    const ks = link.keyset;
    if (!reg || !ks || link.node_id === null) return;
    const now = this.now;
    await this.db
      .insertInto('market_agent_keys')
      .values({
        receipt_key: ks.receipt_public_key,
        hpke_key: ks.hpke_public_key,
        agent_id: reg.agent_id,
        node_id: link.node_id,
        app_name: reg.app_name,
        first_attested_ms: now,
        last_attested_ms: now,
      })
      .onConflict((oc) => oc.column('receipt_key').doUpdateSet({ last_attested_ms: now }))
      .execute();
  }

  // ---------- Unit prices ----------

  async setUnitPrices(node_id: string, prices: UnitPrices): Promise<void> {
    const p = JSON.stringify(UnitPrices.parse(prices));
    await this.db
      .insertInto('market_unit_prices')
      .values({ node_id, prices: p, updated_ms: this.now })
      .onConflict((oc) => oc.column('node_id').doUpdateSet({ prices: p, updated_ms: this.now }))
      .execute();
  }

  async unitPrices(node_id: string): Promise<UnitPrices | undefined> {
    const r = await this.db
      .selectFrom('market_unit_prices')
      .select('prices')
      .where('node_id', '=', node_id)
      .executeTakeFirst();
    return r ? (JSON.parse(r.prices) as UnitPrices) : undefined;
  }

  // ---------- Create, close ----------

  /**
   * Eligible nodes serving `app` (the market's routing order) that post unit prices, each with a routable
   * agent of the app held by this process whose receipt key is attested for the node.
   */
  async candidates(app: string): Promise<ReservationCandidate[]> {
    const ranked = await this.market.candidates(app);
    const out: ReservationCandidate[] = [];
    const { live, config } = this.market.deps;
    for (const n of ranked) {
      if (out.length >= MAX_RESERVATION_CANDIDATES) break;
      const prices = await this.unitPrices(n.id);
      if (!prices) continue;
      const keys = await this.db
        .selectFrom('market_agent_keys')
        .select(['agent_id', 'receipt_key', 'hpke_key'])
        .where('node_id', '=', n.id)
        .where('app_name', '=', app)
        .orderBy('last_attested_ms', 'desc')
        .limit(64)
        .execute();
      const now = this.now;
      const agent = keys.find((k) => {
        const l = live.byAgentId.get(k.agent_id);
        return (
          l !== undefined &&
          l.keyset?.receipt_public_key === k.receipt_key &&
          l.routable(now, config.health_timeout_ms) &&
          l.node_id === n.id
        );
      });
      if (agent)
        out.push({
          id: n.id,
          provider: n.provider,
          agent_id: agent.agent_id,
          unit_prices: prices,
          keyset: { hpke_public_key: agent.hpke_key, receipt_public_key: agent.receipt_key },
        });
    }
    return out;
  }

  create<T>(
    r: { id: string; user_id: string; app_name: string; quota: number; expires_ms: number; token_sha256: string },
    candidates: readonly ReservationCandidate[],
    then: (res: CreateReservationResult, ctx: ApplyContext) => T,
  ): Promise<T> {
    return this.#one(r.id, () =>
      this.market.deps.ledger.submit(
        createReservationOp(
          { ...r, candidates },
          this.market.timing,
          (node_id) => this.market.liveEligible(node_id, r.app_name),
          then,
        ),
      ),
    );
  }

  close(id: string, reason: string): Promise<CloseResult> {
    return this.#one(id, () => this.market.deps.ledger.submit(closeReservationOp(id, reason)));
  }

  // ---------- Receipts ----------

  /**
   * Checks each signed receipt (shape, amount, signature), then claims the valid ones per reservation, in
   * order. Every refusal is logged; none throws. Returns one outcome per input, in input order.
   */
  async claim(inputs: readonly unknown[], source: string): Promise<ReceiptClaim[]> {
    if (inputs.length > MAX_RECEIPTS_PER_CLAIM) throw new RangeError(`at most ${MAX_RECEIPTS_PER_CLAIM} receipts`);
    const out: ReceiptClaim[] = [];
    const groups = new Map<string, { index: number; v: VerifiedReceipt }[]>();
    const checked = await Promise.all(inputs.map((x) => checkReceipt(x, this.#signatures.verify)));
    checked.forEach((c, index) => {
      if (!c.ok) {
        const code = c.reason.split(':')[0] as ReceiptRefusal;
        out.push({ index, outcome: { ok: false, code, detail: c.reason } });
        return;
      }
      const list = groups.get(c.receipt.reservation_id) ?? [];
      // The stored form is the canonical JSON of {receipt, signature} as received (strict schema: nothing else
      // in it); its receipt part was canonicalized once already, for the signature check.
      const canonical = this.#signatures.canonicalOf(c.receipt) ?? canonicalRecordJson(c.receipt);
      const signature = (inputs[index] as { signature: string }).signature;
      const signed = `{"receipt":${canonical},"signature":${JSON.stringify(signature)}}`;
      list.push({ index, v: { receipt: c.receipt, signed } });
      groups.set(c.receipt.reservation_id, list);
    });
    await Promise.all(
      [...groups].map(([id, list]) =>
        this.#one(id, async () => {
          for (let i = 0; i < list.length; i += MAX_RECEIPTS_PER_OP) {
            const slice = list.slice(i, i + MAX_RECEIPTS_PER_OP);
            const results = await this.market.deps.ledger.submit(
              claimReceiptsOp(
                id,
                slice.map((s) => s.v),
                this.market.timing,
              ),
            );
            results.forEach((outcome, k) => out.push({ index: slice[k]!.index, outcome }));
          }
        }),
      ),
    );
    out.sort((a, b) => a.index - b.index);
    for (const c of out) {
      this.onOutcome?.(c.outcome.ok ? 'accepted' : c.outcome.code);
      if (c.outcome.ok) {
        this.counts.accepted++;
        continue;
      }
      this.counts.refused++;
      const x = inputs[c.index] as { receipt?: { reservation_id?: unknown; key?: unknown; seq?: unknown } } | null;
      this.market.deps.log.warn(
        {
          source,
          code: c.outcome.code,
          detail: 'detail' in c.outcome ? c.outcome.detail : undefined,
          reservation_id: String(x?.receipt?.reservation_id ?? '').slice(0, 64),
          key: String(x?.receipt?.key ?? '').slice(0, 64),
          seq: typeof x?.receipt?.seq === 'number' ? x.receipt.seq : undefined,
        },
        'receipt refused; nothing moved',
      );
    }
    return out;
  }

  /** `claim`, answered per receipt by the (key, seq) it names: the verdicts sent back to an agent. */
  async verdicts(inputs: readonly unknown[], source: string): Promise<ReceiptVerdict[]> {
    const claims = await this.claim(inputs, source);
    return claims.map((c) => {
      const r = (inputs[c.index] as { receipt?: { key?: unknown; seq?: unknown } } | null)?.receipt;
      const key = typeof r?.key === 'string' ? r.key : '';
      const seq = typeof r?.seq === 'number' ? r.seq : -1;
      return c.outcome.ok ? { key, seq, ok: true } : { key, seq, ok: false, code: c.outcome.code };
    });
  }

  // ---------- Sweeps ----------

  /** Ends reservations past their end (+ receipt grace), rolls locks over period boundaries, applies zero
   *  tolerance. Idempotent; called by the market's scheduler. */
  async sweep(): Promise<{ closed: number; rolled: number }> {
    const now = this.now;
    let closed = 0;
    let rolled = 0;
    const ended = await this.db
      .selectFrom('market_reservations')
      .select('id')
      .where('status', '=', 'open')
      .where('expires_ms', '<=', now - RECEIPT_GRACE_MS)
      .limit(SWEEP_LIMIT)
      .execute();
    for (const r of ended) if ((await this.close(r.id, 'expired')).outcome === 'closed') closed++;

    const open = (
      await this.db
        .selectFrom('market_reservations')
        .selectAll()
        .where('status', '=', 'open')
        .orderBy('id')
        .limit(SWEEP_LIMIT)
        .execute()
    ).map(stateOf);
    const byNode = new Map<string, typeof open>();
    for (const r of open) byNode.set(r.node_id, [...(byNode.get(r.node_id) ?? []), r]);
    const pm = this.market.timing.period_ms;
    for (const [node_id, list] of byNode) {
      const since = Math.min(...list.map((r) => r.created_ms));
      const inc = await nodeIncidents(this.db, node_id, since, periodIndex(since, pm));
      for (const r of list) {
        // Judge each reservation on what happened since its own creation.
        const own =
          zeroToleranceReason(inc) === null
            ? null
            : zeroToleranceReason(await nodeIncidents(this.db, node_id, r.created_ms, periodIndex(r.created_ms, pm)));
        if (own !== null) {
          if ((await this.close(r.id, own)).outcome === 'closed') closed++;
          continue;
        }
        if (periodIndex(now, pm) > r.lock_period) {
          const res = await this.#one(r.id, () =>
            this.market.deps.ledger.submit(rollReservationOp(r.id, this.market.timing)),
          );
          if (res === 'rolled') rolled++;
          else if (res === 'closed') closed++;
        }
      }
    }
    return { closed, rolled };
  }

  /** Zero tolerance right away for one node's open reservations (an authorised abuse report, a ban). */
  async checkNode(node_id: string): Promise<number> {
    const open = await this.db
      .selectFrom('market_reservations')
      .selectAll()
      .where('node_id', '=', node_id)
      .where('status', '=', 'open')
      .limit(SWEEP_LIMIT)
      .execute();
    let closed = 0;
    const pm = this.market.timing.period_ms;
    for (const row of open) {
      const r = stateOf(row);
      const why = zeroToleranceReason(
        await nodeIncidents(this.db, node_id, r.created_ms, periodIndex(r.created_ms, pm)),
      );
      if (why !== null && (await this.close(r.id, why)).outcome === 'closed') closed++;
    }
    return closed;
  }

  get(id: string) {
    return getReservation(this.db, id);
  }

  /** Stops the signature workers. */
  stop(): Promise<unknown> {
    return this.#signatures.close();
  }
}
