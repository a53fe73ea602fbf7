import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AmountError, MAX_AMOUNT_MICRO, formatUsd, parseAmount } from '@easyenclave/control-plane/ledger/amount';

function refused(input: string | number | bigint, reason: RegExp): void {
  assert.throws(
    () => parseAmount(input),
    (err: unknown) => err instanceof AmountError && reason.test(err.message),
    `${String(input)} should be refused with ${reason}`,
  );
}

test('dollar strings convert exactly to micro-USD', () => {
  assert.equal(parseAmount('$200'), 200_000_000n);
  assert.equal(parseAmount('200'), 200_000_000n);
  assert.equal(parseAmount('12.50'), 12_500_000n);
  assert.equal(parseAmount('$12.5'), 12_500_000n);
  assert.equal(parseAmount('0.000001'), 1n);
  assert.equal(parseAmount('0.1'), 100_000n); // would be 0.1000000000000000055… as a float
  assert.equal(parseAmount('007.25'), 7_250_000n);
  assert.equal(parseAmount('9007199254.740991'), MAX_AMOUNT_MICRO);
});

test('integers are taken as micro-USD', () => {
  assert.equal(parseAmount(1), 1n);
  assert.equal(parseAmount(12_500_000), 12_500_000n);
  assert.equal(parseAmount(Number.MAX_SAFE_INTEGER), MAX_AMOUNT_MICRO);
  assert.equal(parseAmount(42n), 42n);
  assert.equal(parseAmount(MAX_AMOUNT_MICRO), MAX_AMOUNT_MICRO);
});

test('bad amounts are refused with a reason', () => {
  refused('-5', /must not be negative/);
  refused('$-5', /must not be negative/);
  refused(-5, /must not be negative/);
  refused(-5n, /must not be negative/);
  refused('+5', /sign/);
  refused('0', /must not be zero/);
  refused('$0.000000', /must not be zero/);
  refused(0, /must not be zero/);
  refused(0n, /must not be zero/);
  refused('1.0000001', /more than 6 decimals/);
  refused('9007199254.740992', /exceeds the maximum/);
  refused('99999999999999999999999', /exceeds the maximum/);
  refused(2 ** 53, /exceeds the maximum/);
  refused(MAX_AMOUNT_MICRO + 1n, /exceeds the maximum/);
  refused(1.5, /must be integers/);
  refused(Number.NaN, /not a number/);
  refused(Number.POSITIVE_INFINITY, /finite/);
  refused('1e6', /exponent/);
  refused('1E6', /exponent/);
  refused('2.5e+3', /exponent/);
  // A word with an "e" in it is not exponent notation (it read "exponent notation is not accepted" before).
  refused('ten', /expected dollars/);
  refused('$seven', /expected dollars/);
  refused(' 5', /whitespace/);
  refused('5\n', /whitespace/);
  refused('1,000', /separators/);
  refused('', /empty/);
  refused('$', /expected dollars/);
  refused('.5', /expected dollars/);
  refused('5.', /expected dollars/);
  refused('USD 5', /whitespace/);
  refused('abc', /expected dollars/);
  refused('0x10', /expected dollars/);
  refused(null as unknown as string, /must be a string, number or bigint/);
});

test('formatUsd: cents when exact, six decimals otherwise, never rounded', () => {
  assert.equal(formatUsd(12_500_000n), '$12.50');
  assert.equal(formatUsd(200_000_000n), '$200.00');
  assert.equal(formatUsd(0n), '$0.00');
  assert.equal(formatUsd(1n), '$0.000001');
  assert.equal(formatUsd(12_500_001n), '$12.500001');
  assert.equal(formatUsd(-3_000_000n), '-$3.00');
  assert.equal(formatUsd(MAX_AMOUNT_MICRO), '$9007199254.740991');
});

test('property: formatUsd then parseAmount is the identity on valid amounts', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 1n, max: MAX_AMOUNT_MICRO }), (micro) => {
      assert.equal(parseAmount(formatUsd(micro)), micro);
    }),
    { numRuns: 1000 },
  );
});

test('property: any string either parses to a valid amount or throws AmountError', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.stringMatching(/^\$?-?\d{0,18}(\.\d{0,8})?$/)), (s) => {
      try {
        const micro = parseAmount(s);
        assert.ok(micro > 0n && micro <= MAX_AMOUNT_MICRO);
      } catch (err) {
        assert.ok(err instanceof AmountError, String(err));
      }
    }),
    { numRuns: 1000 },
  );
});
