// The attestation policy: a versioned JSON document saying which releases may run (MRTD and RTMRs per
// repo@release_tag), which TCB statuses are acceptable and for how long an OutOfDate platform is tolerated,
// which Intel advisories are refused outright, optional TD attribute/XFAM constraints, and the networks.
// The schema is strict: an unknown or misspelt field is an error, never silently ignored.
//
// OutOfDate grace window. An OutOfDate (or OutOfDateConfigurationNeeded) platform is accepted only if the
// status is listed in tcb.allowed_statuses AND the verification time is before grace_start +
// out_of_date_grace_days, where grace_start is the date the platform's TCB level stopped being current: the
// tcbDate of the oldest TCB level in the signed TCB info (or QE identity) that is newer than the level the
// platform matched — i.e. the TCB recovery that made it OutOfDate. If the matched level is the newest one
// listed, its own tcbDate is used. Neither the matched level's own tcbDate (years old for an OutOfDate
// level: the grace would always be over) nor the collateral's issueDate (re-issued monthly: the grace would
// never end) measures how long the platform has been out of date. dcap-tcb.ts computes grace_start.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { AttestationSubject } from './evidence.js';
import { isKnownNetwork, NETWORKS } from './network.js';
import { QUOTE_REASONS } from './quote.js';

export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
] as const;
export type AcceptableTcbStatus = (typeof TCB_STATUSES)[number];
export const OUT_OF_DATE_STATUSES: readonly string[] = ['OutOfDate', 'OutOfDateConfigurationNeeded'];

const DAY_MS = 86_400_000;

const hex = (bytes: number) =>
  z
    .string()
    .regex(new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`), `must be ${bytes * 2} hex characters`)
    .transform((s) => s.toLowerCase());

const maskValue = z
  .strictObject({ mask: hex(8), value: hex(8) })
  .refine((v) => (BigInt(`0x${v.value}`) & ~BigInt(`0x${v.mask}`)) === 0n, 'value has bits set outside mask');

const measurement = z.strictObject({
  repo: z.string().regex(/^[^@\s/]+\/[^@\s/]+$/, 'must be "owner/name"'),
  release_tag: z.string().min(1).max(256),
  mrtd: hex(48),
  rtmr0: hex(48).optional(),
  rtmr1: hex(48).optional(),
  rtmr2: hex(48).optional(),
  rtmr3: hex(48).optional(),
});

export const PolicySchema = z
  .strictObject({
    version: z.string().min(1).max(128),
    measurements: z.array(measurement),
    tcb: z.strictObject({
      allowed_statuses: z.array(z.enum(TCB_STATUSES)).min(1),
      out_of_date_grace_days: z.number().int().min(0).max(3650),
    }),
    advisory_deny: z.array(z.string().regex(/^[A-Z]+-[A-Z]+-\d+$/, 'must look like INTEL-SA-00123')),
    /** Byte strings as they appear in the quote (little-endian), 8 bytes each. */
    td_attributes: maskValue.optional(),
    xfam: maskValue.optional(),
    networks: z.record(
      z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a network name like forge-1'),
      z.strictObject({ sealed: z.boolean() }),
    ),
  })
  .superRefine((p, ctx) => {
    for (const [name, net] of Object.entries(p.networks)) {
      if (!isKnownNetwork(name)) {
        ctx.addIssue({ code: 'custom', path: ['networks', name], message: `unknown network "${name}"` });
      } else if (NETWORKS[name].sealed !== net.sealed) {
        ctx.addIssue({
          code: 'custom',
          path: ['networks', name],
          message: `network "${name}" is ${NETWORKS[name].sealed ? 'sealed' : 'unsealed'}; a policy cannot change that`,
        });
      }
    }
    const ood = p.tcb.allowed_statuses.some((s) => OUT_OF_DATE_STATUSES.includes(s));
    if (ood && p.tcb.out_of_date_grace_days === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['tcb', 'out_of_date_grace_days'],
        message:
          'allowed_statuses lists an OutOfDate status but the grace window is 0 days, so it could never be accepted',
      });
    }
  });

export type Policy = z.output<typeof PolicySchema>;
export type TcbPolicy = Policy['tcb'] & { advisory_deny: string[] };

/** Used when a verifier has no policy: only current platforms, no advisory deny-list. */
export const DEFAULT_TCB_POLICY: TcbPolicy = Object.freeze({
  allowed_statuses: ['UpToDate', 'SWHardeningNeeded'] as AcceptableTcbStatus[],
  out_of_date_grace_days: 0,
  advisory_deny: [] as string[],
});

export function parsePolicy(value: unknown): Policy {
  const r = PolicySchema.safeParse(value);
  if (!r.success) {
    const issues = r.error.issues.map((i) => {
      // A record key that fails its schema is reported as "Invalid key in record"; say why.
      const inner = i.code === 'invalid_key' ? (i as { issues?: { message: string }[] }).issues : undefined;
      const msg = inner !== undefined && inner.length > 0 ? inner.map((x) => x.message).join(', ') : i.message;
      return `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${msg}`;
    });
    throw new Error(`invalid attestation policy: ${issues.join('; ')}`);
  }
  return r.data;
}

export function loadPolicy(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read attestation policy ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`attestation policy ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parsePolicy(json);
}

/** What policy evaluation reads from a verified (or partially verified) quote. Hex is lowercase. */
export interface PolicyInput {
  mrtd: string | null;
  rtmr0: string | null;
  rtmr1: string | null;
  rtmr2: string | null;
  rtmr3: string | null;
  td_attributes: string | null;
  xfam: string | null;
  tcb_status: string | null;
  advisory_ids: string[];
  /** ISO date from which the OutOfDate grace window runs (see the header comment); null if not OutOfDate. */
  tcb_grace_start: string | null;
}

const RTMRS = ['rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'] as const;

export const POLICY_REASONS = {
  releaseNotAllowed: (repo: string, tag: string) => `release not in the allowlist: ${repo}@${tag}`,
  unknownMrtd: (mrtd: string, repo: string, tag: string) => `unknown MRTD ${mrtd} for ${repo}@${tag}`,
  rtmrMismatch: (rtmr: string, repo: string, tag: string, expected: string, got: string) =>
    `RTMR mismatch: ${rtmr} for ${repo}@${tag} is ${got}, expected ${expected}`,
  networkNotInPolicy: (network: string, version: string) =>
    `network "${network}" is not in attestation policy ${version}`,
  tcbNotAllowed: (status: string) => `TCB status ${status} is not allowed by the policy`,
  outOfGrace: (status: string, start: string, days: number) =>
    `${status} outside the grace window: out of date since ${start}, grace is ${days} days`,
  advisoryDenied: (id: string) => `advisory ${id} is on the policy's deny-list`,
  tcbUnknown: 'TCB status is unknown (DCAP verification did not complete)',
  debug: QUOTE_REASONS.debug,
} as const;

function maskMismatch(actual: string | null, mv: { mask: string; value: string } | undefined, what: string): string[] {
  if (mv === undefined) return [];
  if (actual === null) return [`${what} unavailable for the policy check`];
  if ((BigInt(`0x${actual}`) & BigInt(`0x${mv.mask}`)) !== BigInt(`0x${mv.value}`)) {
    return [`${what} ${actual} do not match the policy (mask ${mv.mask}, value ${mv.value})`];
  }
  return [];
}

/** The measurement-allowlist step: network, release, MRTD, RTMRs, TD attributes and XFAM constraints. */
export function evaluateMeasurements(policy: Policy, input: PolicyInput, subject: AttestationSubject): string[] {
  const reasons: string[] = [];
  if (!Object.hasOwn(policy.networks, subject.network))
    reasons.push(POLICY_REASONS.networkNotInPolicy(subject.network, policy.version));
  const release = policy.measurements.filter((m) => m.repo === subject.repo && m.release_tag === subject.release_tag);
  if (release.length === 0) {
    reasons.push(POLICY_REASONS.releaseNotAllowed(subject.repo, subject.release_tag));
  } else {
    const mrtd = (input.mrtd ?? '').toLowerCase();
    const byMrtd = release.filter((m) => m.mrtd === mrtd);
    if (byMrtd.length === 0) {
      reasons.push(POLICY_REASONS.unknownMrtd(mrtd, subject.repo, subject.release_tag));
    } else {
      const matches = (m: (typeof byMrtd)[number]): boolean =>
        RTMRS.every((r) => m[r] === undefined || m[r] === (input[r] ?? '').toLowerCase());
      if (!byMrtd.some(matches)) {
        const first = byMrtd[0] as (typeof byMrtd)[number];
        for (const r of RTMRS) {
          const expected = first[r];
          const got = (input[r] ?? '').toLowerCase();
          if (expected !== undefined && expected !== got) {
            reasons.push(
              POLICY_REASONS.rtmrMismatch(r.toUpperCase(), subject.repo, subject.release_tag, expected, got),
            );
          }
        }
      }
    }
  }
  reasons.push(...maskMismatch(input.td_attributes, policy.td_attributes, 'TD attributes'));
  reasons.push(...maskMismatch(input.xfam, policy.xfam, 'XFAM'));
  return reasons;
}

/** The TCB step: allowed statuses, the OutOfDate grace window, the advisory deny-list. */
export function evaluateTcb(
  tcb: TcbPolicy,
  input: Pick<PolicyInput, 'tcb_status' | 'advisory_ids' | 'tcb_grace_start'>,
  now_ms: number,
): string[] {
  const reasons: string[] = [];
  const status = input.tcb_status;
  if (status === null) return [POLICY_REASONS.tcbUnknown];
  if (!(tcb.allowed_statuses as readonly string[]).includes(status)) {
    reasons.push(POLICY_REASONS.tcbNotAllowed(status));
  } else if (OUT_OF_DATE_STATUSES.includes(status)) {
    const start = input.tcb_grace_start === null ? Number.NaN : Date.parse(input.tcb_grace_start);
    if (!Number.isFinite(start) || now_ms >= start + tcb.out_of_date_grace_days * DAY_MS) {
      reasons.push(
        POLICY_REASONS.outOfGrace(status, input.tcb_grace_start ?? 'an unknown date', tcb.out_of_date_grace_days),
      );
    }
  }
  for (const id of input.advisory_ids) {
    if (tcb.advisory_deny.includes(id)) reasons.push(POLICY_REASONS.advisoryDenied(id));
  }
  return reasons;
}

export function tcbPolicyOf(policy: Policy | undefined): TcbPolicy {
  return policy === undefined ? DEFAULT_TCB_POLICY : { ...policy.tcb, advisory_deny: policy.advisory_deny };
}

/** Every policy check at once (the offline CLI's view); the verifier runs the same pieces in its own order. */
export function evaluatePolicy(
  policy: Policy,
  input: PolicyInput,
  subject: AttestationSubject,
  now_ms: number,
): string[] {
  const reasons: string[] = [];
  if (input.td_attributes !== null && (Buffer.from(input.td_attributes, 'hex')[0] ?? 0) & 1)
    reasons.push(POLICY_REASONS.debug);
  reasons.push(...evaluateMeasurements(policy, input, subject));
  reasons.push(...evaluateTcb(tcbPolicyOf(policy), input, now_ms));
  return reasons;
}
