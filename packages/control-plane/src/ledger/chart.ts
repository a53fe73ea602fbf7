/** The chart of accounts (docs/design.md §4): who owns which ledger account, and with which flags. */
import type { AccountInput } from './types.js';

export const PLATFORM_ISSUANCE = 'platform:issuance';
export const PLATFORM_SLASH_POOL = 'platform:slash_pool';
export const PLATFORM_PAYOUTS = 'platform:payouts';

export type IdentityKind = 'user' | 'provider';

/** `user:{id}` / `provider:{id}`: an API identity's id is its kind and a random suffix. */
export const IDENTITY_ID_PATTERN = /^(user|provider):([0-9a-f]{20})$/;

export const providerEarnings = (identity: string) => `${identity}:earnings`;
export const providerStake = (identity: string) => `${identity}:stake`;

/** The ledger accounts an identity owns; the first is where transfers to and from it go. */
export function ownedAccounts(identity: string): string[] {
  return identity.startsWith('provider:') ? [providerEarnings(identity), providerStake(identity)] : [identity];
}

/** Which identity owns a ledger account (undefined for platform accounts). */
export function ownerOf(account: string): string | undefined {
  const m = /^((?:user|provider):[0-9a-f]{20})(?::earnings|:stake)?$/.exec(account);
  return m?.[1];
}

const NO_OVERDRAFT = { debits_must_not_exceed_credits: true } as const;

export function identityAccountInputs(identity: string): AccountInput[] {
  return ownedAccounts(identity).map((id) => ({ id, flags: NO_OVERDRAFT }));
}

/**
 * Issuance has no flags: it is debited by every mint and so goes as negative as the money in circulation.
 * Slash pool and payouts only ever receive, and may pay out only what they hold.
 */
export const PLATFORM_ACCOUNTS: readonly AccountInput[] = [
  { id: PLATFORM_ISSUANCE },
  { id: PLATFORM_SLASH_POOL, flags: NO_OVERDRAFT },
  { id: PLATFORM_PAYOUTS, flags: NO_OVERDRAFT },
];
