/**
 * Money amounts: integer micro-USD (1 credit = $1 = 1_000_000 micro-USD), always `bigint`.
 *
 * Machines pass integers (number or bigint) that already are micro-USD; people type dollar strings such as
 * "$200", "200" or "12.50", which are converted by string arithmetic so no float ever touches money.
 */

export const MICRO_PER_USD = 1_000_000n;

/**
 * Largest accepted amount: 2^53 - 1 micro-USD (~$9 billion). Chosen as Number.MAX_SAFE_INTEGER so every amount
 * also survives a trip through a JSON number (the wire format uses integers) without rounding.
 */
export const MAX_AMOUNT_MICRO = 2n ** 53n - 1n;

/** Thrown by parseAmount; `.message` says what was wrong so a CLI can show it verbatim. */
export class AmountError extends Error {
  constructor(
    readonly input: unknown,
    reason: string,
  ) {
    super(`invalid amount ${describe(input)}: ${reason}`);
    this.name = 'AmountError';
  }
}

function describe(input: unknown): string {
  if (typeof input === 'string') return JSON.stringify(input);
  if (typeof input === 'bigint') return `${input}n`;
  return String(input);
}

// A dollar string: optional "$", digits, optional "." followed by 1..6 digits. Nothing else (no sign, no
// exponent, no thousands separators, no whitespace) so an ambiguous input is refused rather than guessed at.
const DOLLARS = /^\$?(\d+)(?:\.(\d+))?$/;

/** Converts a person's or a machine's amount into positive micro-USD, or throws AmountError saying why. */
export function parseAmount(input: string | number | bigint): bigint {
  let micro: bigint;
  if (typeof input === 'bigint') {
    micro = input;
  } else if (typeof input === 'number') {
    if (Number.isNaN(input)) throw new AmountError(input, 'not a number');
    if (!Number.isFinite(input)) throw new AmountError(input, 'must be finite');
    if (!Number.isInteger(input)) {
      throw new AmountError(
        input,
        'numbers are micro-USD and must be integers; pass a string like "12.50" for dollars',
      );
    }
    // Above 2^53 a float can no longer represent every integer, so the value the caller meant may be lost already.
    if (!Number.isSafeInteger(input) && input > 0) {
      throw new AmountError(input, `exceeds the maximum of ${MAX_AMOUNT_MICRO} micro-USD`);
    }
    micro = BigInt(input);
  } else if (typeof input === 'string') {
    micro = parseDollarString(input);
  } else {
    throw new AmountError(input, 'must be a string, number or bigint');
  }
  if (micro < 0n) throw new AmountError(input, 'must not be negative');
  if (micro === 0n) throw new AmountError(input, 'must not be zero');
  if (micro > MAX_AMOUNT_MICRO) throw new AmountError(input, `exceeds the maximum of ${MAX_AMOUNT_MICRO} micro-USD`);
  return micro;
}

function parseDollarString(input: string): bigint {
  if (input.length === 0) throw new AmountError(input, 'empty');
  if (/\s/.test(input)) throw new AmountError(input, 'must not contain whitespace');
  if (/^\$?-|^-/.test(input)) throw new AmountError(input, 'must not be negative');
  if (/^\$?\+/.test(input)) throw new AmountError(input, 'must not have a sign');
  // Only what reads as a number in exponent notation ("1e6", "2.5E+3") is called that; "ten" is just not an amount.
  if (/^\$?\d*\.?\d+[eE][+-]?\d+$/.test(input)) throw new AmountError(input, 'exponent notation is not accepted');
  if (input.includes(',')) throw new AmountError(input, 'thousands separators are not accepted');
  const m = DOLLARS.exec(input);
  if (!m) throw new AmountError(input, 'expected dollars like "$200", "200" or "12.50"');
  const whole = m[1] ?? '0';
  const frac = m[2] ?? '';
  if (frac.length > 6) throw new AmountError(input, 'more than 6 decimals (the unit is 1 micro-USD = $0.000001)');
  // Bound the digit count before BigInt so absurd inputs fail fast with the same message.
  if (whole.replace(/^0+/, '').length > 16) {
    throw new AmountError(input, `exceeds the maximum of ${MAX_AMOUNT_MICRO} micro-USD`);
  }
  return BigInt(whole) * MICRO_PER_USD + BigInt(frac.padEnd(6, '0'));
}

/**
 * Formats micro-USD for people: "$12.50" when the amount is a whole number of cents, otherwise all six decimals
 * ("$12.500001") so the display is never rounded. Negative amounts (e.g. the issuance account's net balance)
 * render as "-$3.00".
 */
export function formatUsd(micro: bigint): string {
  const sign = micro < 0n ? '-' : '';
  const abs = micro < 0n ? -micro : micro;
  const whole = abs / MICRO_PER_USD;
  const frac = (abs % MICRO_PER_USD).toString().padStart(6, '0');
  const decimals = frac.endsWith('0000') ? frac.slice(0, 2) : frac;
  return `${sign}$${whole}.${decimals}`;
}
