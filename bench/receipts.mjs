#!/usr/bin/env node
// Receipts benchmark (issue 13): signed usage receipts accepted per second by the control plane's receipt
// path — Reservations.claim, the code the tunnel's `receipts` messages reach: shape, amount and Ed25519
// signature checks, then per reservation one ledger operation per batch that posts each receipt's exact
// amount from escrow, locks the rest again and stores the receipt, with SQLite's durability on (WAL,
// synchronous=FULL). Receipts are signed beforehand (that is the agents' work) and arrive in tunnel-sized
// batches from many agents at once. After the run, every receipt must have been accepted, the reservations'
// claimed totals must equal the receipts' sum, and the ledger must verify.
// Standalone: `node bench/receipts.mjs [--receipts N] [--json]` (after `npx tsc -b`).
import { mkdtempSync, rmSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openStore, runMigrations } from '@easyenclave/control-plane/store/index';
import { LedgerStore } from '@easyenclave/control-plane/ledger-store/ledger-store';
import { verifyLedger } from '@easyenclave/control-plane/ledger-store/verify';
import { identityAccountInputs, PLATFORM_ISSUANCE } from '@easyenclave/control-plane/ledger/chart';
import { MARKET_MIGRATIONS } from '@easyenclave/control-plane/market/store/migrations';
import { createReservationOp } from '@easyenclave/control-plane/market/ops-reservation';
import { Reservations } from '@easyenclave/control-plane/market/reservations';
import { receiptAmount, signReceipt } from '@easyenclave/protocol/receipt';
import { importSigningKey } from '@easyenclave/protocol/signed-record';
import { MAX_RECEIPTS_PER_MESSAGE } from '@easyenclave/protocol';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const N = opt('--receipts', 20_000);
const JSON_OUT = argv.includes('--json');
/** Agents (keys) sending at once, each with its own reservations; batches in flight at once. */
const AGENTS = 16;
const RESERVATIONS_PER_AGENT = 4;
const IN_FLIGHT = 32;
const TOKEN_SHA256 = 'ab'.repeat(32);
const PRICES = { tokens_in: 150, tokens_out: 600, requests: 1000, bytes: 1 };
const log = (...a) => {
  if (!JSON_OUT) console.error(...a);
};

const dir = mkdtempSync(join(tmpdir(), 'ee-bench-receipts-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

let now = Date.now();
const store = await openStore({ db_path: join(dir, 'cp.db') });
const ledger = await LedgerStore.open(store.db, store.dialect, () => now);
await runMigrations(store.db, store.dialect, MARKET_MIGRATIONS);
const db = store.db;
const timing = { period_ms: 3_600_000, grace_ms: 6 * 3_600_000 };
const user = 'user:00000000000000000001';
const provider = 'provider:0000000000000000000a';
const node = 'node_0000000000000000';
for (const id of [user, provider]) await ledger.createAccounts(identityAccountInputs(id));
await ledger.createTransfers([
  { id: 'mint:u', debit_account: PLATFORM_ISSUANCE, credit_account: user, amount: 1_000_000_000_000n },
  { id: 'mint:p', debit_account: PLATFORM_ISSUANCE, credit_account: `${provider}:earnings`, amount: 1_000_000n },
]);
await db
  .insertInto('market_nodes')
  .values({
    id: node,
    provider,
    name: node,
    region: 'r',
    tier: 'economy',
    network: 'sandbox-1',
    vcpus: 1,
    capacity_months: 1,
    price_micro: 1,
    ppid: null,
    token_hash: null,
    status: 'active',
    banned_ms: null,
    banned_reason: null,
    created_ms: now,
  })
  .execute();
await ledger.createTransfers([
  { id: 'stake', debit_account: `${provider}:earnings`, credit_account: `${provider}:stake`, amount: 1000n },
]);
// The receipt path of the control plane, on the store and ledger above (what the market gives it).
const market = {
  deps: { store, ledger, log: pino({ level: 'warn' }) },
  db,
  timing,
  get now() {
    return now;
  },
  // The bench records its agents' keys itself (above); no tunnel attests them here.
  onAgentAttested() {},
};
const reservations = await Reservations.open(market);

log(`receipts: ${AGENTS} agents, ${AGENTS * RESERVATIONS_PER_AGENT} reservations, signing ${N} receipts…`);
const agents = [];
for (let a = 0; a < AGENTS; a++) {
  const kp = generateKeyPairSync('ed25519');
  const key_hex = Buffer.from(kp.publicKey.export({ format: 'jwk' }).x, 'base64url').toString('hex');
  const agent_id = `bench-agent-${a}`;
  await db
    .insertInto('market_agent_keys')
    .values({
      receipt_key: key_hex,
      hpke_key: key_hex,
      agent_id,
      node_id: node,
      app_name: 'chat',
      first_attested_ms: now - 1000,
      last_attested_ms: now,
    })
    .execute();
  const rsvs = [];
  for (let r = 0; r < RESERVATIONS_PER_AGENT; r++) {
    const id = `rsv_bench_${a}_${r}`;
    const res = await ledger.submit(
      createReservationOp(
        {
          id,
          user_id: user,
          app_name: 'chat',
          quota: 1_000_000_000,
          expires_ms: now + 3_600_000,
          token_sha256: TOKEN_SHA256,
          candidates: [{ id: node, provider, agent_id, unit_prices: PRICES }],
        },
        timing,
        () => true,
        (x) => x,
      ),
    );
    if (!res.ok) throw new Error(`reservation: ${JSON.stringify(res)}`);
    rsvs.push(id);
  }
  agents.push({
    agent_id,
    key_hex,
    key: await importSigningKey(kp.privateKey.export({ format: 'jwk' })),
    rsvs,
    seq: 0,
  });
}
now += 1000;
const perAgent = Math.ceil(N / AGENTS);
const batches = [];
let expected = 0;
for (const a of agents) {
  let batch = [];
  for (let i = 0; i < perAgent; i++) {
    const units = { tokens_in: 100 + (i % 50), tokens_out: 200 + (i % 70), requests: 0, bytes: 0 };
    const amount = Number(receiptAmount(units, PRICES));
    expected += amount;
    batch.push(
      await signReceipt(a.key, {
        v: 1,
        reservation_id: a.rsvs[i % a.rsvs.length],
        reservation_token_sha256: TOKEN_SHA256,
        request_id: `req_${a.seq}`,
        request_sha256: '0'.repeat(64),
        response_sha256: '1'.repeat(64),
        kind: 'tokens',
        units,
        unit_prices: PRICES,
        amount_micro_usd: amount,
        agent_id: a.agent_id,
        key: a.key_hex,
        seq: ++a.seq,
        time_ms: now - 500,
      }),
    );
    if (batch.length === MAX_RECEIPTS_PER_MESSAGE) {
      batches.push(batch);
      batch = [];
    }
  }
  if (batch.length > 0) batches.push(batch);
}
// Interleave the agents' batches, as messages from many agents arrive.
batches.sort((x, y) => x[0].receipt.seq - y[0].receipt.seq);
const total = batches.reduce((s, b) => s + b.length, 0);

log(`receipts: claiming ${total} receipts in ${batches.length} batches of ≤ ${MAX_RECEIPTS_PER_MESSAGE}…`);
let accepted = 0;
let refused = 0;
let next = 0;
const t0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () => {
    while (next < batches.length) {
      const b = batches[next++];
      for (const c of await reservations.claim(b, 'bench')) {
        if (c.outcome.ok) accepted++;
        else refused++;
      }
    }
  }),
);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
/** Process CPU (every thread: the main one and the signature workers) per accepted receipt. */
const cpu_us_per_receipt = (cpu.user + cpu.system) / Math.max(1, accepted);
const claimed = await db
  .selectFrom('market_reservations')
  .select((eb) => eb.fn.sum('claimed').as('s'))
  .executeTakeFirst();
await reservations.stop();
await ledger.close();
const verify = await verifyLedger(db, store.dialect);
await store.close();
const result = {
  receipts: total,
  accepted,
  refused,
  seconds: secs,
  rate: accepted / secs,
  cpu_us_per_receipt,
  batch: MAX_RECEIPTS_PER_MESSAGE,
  in_flight: IN_FLIGHT,
  claimed_equals_sum: Number(claimed?.s ?? 0) === expected,
  verify_ok: verify.ok,
};
log(
  `receipts: ${accepted} accepted, ${refused} refused in ${secs.toFixed(2)} s = ${result.rate.toFixed(0)}/s, ${cpu_us_per_receipt.toFixed(0)} µs CPU each; claimed = sum: ${result.claimed_equals_sum}; ledger verifies: ${verify.ok}`,
);
process.stdout.write(`${JSON.stringify(result)}\n`);
