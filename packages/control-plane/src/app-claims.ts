// Who may hold an app name (docs/security.md, "App-name squatting"). Pure: the store applies it inside the
// registration's transaction, the hub's prune applies its expiry.
//
// The first repo to register a name claims it, on its network. A claim is not forever:
// - one never attested expires APP_CLAIM_UNATTESTED_TTL_MS after it was made, one attested expires
//   APP_CLAIM_IDLE_TTL_MS after its last successful attestation (an app whose agents are connected re-attests
//   every EE_ATTEST_INTERVAL_SEC, so it never gets there);
// - names are per network in this sense: a claim made on an unsealed (sandbox) network never blocks a sealed
//   network, where names serve production traffic;
// - and a claim with an attested agent connected right now is never taken, whatever the above says.
// New claims are rate-limited per remote address (EE_APP_CLAIMS_PER_HOUR, tunnel/registration.ts).

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
/** A claim no agent ever attested for lapses after this long. */
export const APP_CLAIM_UNATTESTED_TTL_MS = HOUR_MS;
/** A claim lapses this long after its last successful attestation. */
export const APP_CLAIM_IDLE_TTL_MS = 90 * DAY_MS;
/** New app names one remote address may claim per hour (burst the same), unless EE_APP_CLAIMS_PER_HOUR says. */
export const DEFAULT_APP_CLAIMS_PER_HOUR = 100;
/** Remote addresses whose claim rate is tracked at once; the least recently seen is forgotten beyond it. */
export const MAX_TRACKED_CLAIM_ADDRESSES = 4096;

export interface Claim {
  network: string;
  created_at_ms: number;
  attested_at_ms: number | null;
}

export function claimExpired(c: Claim, now_ms: number): boolean {
  return c.attested_at_ms === null
    ? now_ms - c.created_at_ms >= APP_CLAIM_UNATTESTED_TTL_MS
    : now_ms - c.attested_at_ms >= APP_CLAIM_IDLE_TTL_MS;
}

/** May a registrant on `claimant_sealed` network take the name `c` holds for another repo or network? */
export function claimYields(
  c: Claim,
  claimant: { sealed: boolean },
  held_sealed: boolean,
  live_attested_agent: boolean,
  now_ms: number,
): boolean {
  if (live_attested_agent) return false;
  if (claimExpired(c, now_ms)) return true;
  return claimant.sealed && !held_sealed;
}
