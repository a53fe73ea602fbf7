// `ee quote verify` (registered in commands/quote.ts, loaded when it runs): offline verification of one TDX quote against a collateral file (DESIGN §3), through the
// same pipeline as the control plane (header, DCAP chain via dcap-qvl, our CRL checks, TCB status), optionally
// with an attestation policy. Prints TCB status, advisories, measurements, report_data, FMSPC and the policy
// verdict, as a table or (--json) as one JSON object on stdout.
//
// Exit codes: 0 the quote verifies (and the policy, if given, allows it); 1 it does not (reasons printed);
// 2 usage errors (bad arguments, unreadable files).
import { readFileSync } from 'node:fs';
import {
  evaluateMeasurements,
  INTEL_SGX_ROOT_CA_DER,
  loadPolicy,
  normalizeCollateral,
  verifyQuote,
  type AttestationSubject,
  type Collateral,
  type Policy,
  type QuoteReport,
} from '@easyenclave/attestation';
import { readRootOverride } from './root-ca.js';
import { fail } from './process.js';

export type QuoteFileFormat = 'binary' | 'hex' | 'base64';

/** Raw binary, hex (optional 0x, any whitespace) or base64 (standard or URL-safe, any whitespace). */
export function decodeQuoteFile(buf: Buffer): { format: QuoteFileFormat; quote: Buffer } {
  if (buf.length === 0) throw new Error('the file is empty');
  const text = buf.toString('latin1');
  if (!/^[\t\n\r\x20-\x7e]*$/.test(text)) return { format: 'binary', quote: buf };
  const compact = text.replace(/\s+/g, '');
  const hex = compact.replace(/^0x/i, '');
  if (hex.length > 0 && hex.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(hex))
    return { format: 'hex', quote: Buffer.from(hex, 'hex') };
  if (compact.length > 0 && /^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) {
    const quote = Buffer.from(compact.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (quote.length > 0) return { format: 'base64', quote };
  }
  throw new Error('the file is text but neither hex nor base64');
}

export interface VerifyOptions {
  collateral: string;
  at?: string;
  policy?: string;
  repo?: string;
  releaseTag?: string;
  network: string;
  json?: boolean;
  rootCa?: string;
}

interface PolicyVerdict {
  version: string;
  allowed: boolean;
  /** repo@release_tag entries of the allowlist this quote matches. */
  matched_releases: string[];
  /** Measurement-allowlist reasons (TCB-policy reasons are in the top-level reasons). */
  reasons: string[];
}

/** The measurement half of the policy verdict; the TCB half is applied by verifyQuote. */
function measurementVerdict(policy: Policy, report: QuoteReport, o: VerifyOptions): PolicyVerdict {
  const subject = (repo: string, release_tag: string): AttestationSubject => ({
    agent_id: 'offline',
    app_name: 'offline',
    repo,
    release_tag,
    network: o.network,
  });
  const out: PolicyVerdict = { version: policy.version, allowed: false, matched_releases: [], reasons: [] };
  if (report.mrtd === null) {
    out.reasons.push('no measurements: the quote could not be parsed');
    return out;
  }
  if (o.repo !== undefined && o.releaseTag !== undefined) {
    out.reasons = evaluateMeasurements(policy, report, subject(o.repo, o.releaseTag));
    if (out.reasons.length === 0) out.matched_releases.push(`${o.repo}@${o.releaseTag}`);
  } else {
    const candidates = policy.measurements.filter((m) => m.mrtd === report.mrtd);
    let first: string[] | null = null;
    for (const c of candidates) {
      const r = evaluateMeasurements(policy, report, subject(c.repo, c.release_tag));
      if (r.length === 0) out.matched_releases.push(`${c.repo}@${c.release_tag}`);
      else first ??= r;
    }
    if (candidates.length === 0)
      out.reasons.push(`MRTD ${report.mrtd} is not in the allowlist of policy ${policy.version}`);
    else if (out.matched_releases.length === 0) out.reasons.push(...(first ?? []));
  }
  out.allowed = out.reasons.length === 0 && report.ok;
  return out;
}

function readOrUsage<T>(what: string, path: string, read: (p: string) => T): T {
  try {
    return read(path);
  } catch (err) {
    return fail(`cannot use ${what} ${path}: ${(err as Error).message}`, 2);
  }
}

const iso = (s: number) => new Date(s * 1000).toISOString().replace(/\.000Z$/, 'Z');

export async function verifyCommand(file: string, o: VerifyOptions): Promise<void> {
  if ((o.repo === undefined) !== (o.releaseTag === undefined)) fail('--repo and --release-tag go together', 2);
  if ((o.repo !== undefined || o.releaseTag !== undefined) && o.policy === undefined)
    fail('--repo/--release-tag need --policy', 2);
  let at = Math.floor(Date.now() / 1000);
  if (o.at !== undefined) {
    if (!/^[0-9]{1,12}$/.test(o.at)) fail(`--at must be unix seconds (a whole number), got "${o.at}"`, 2);
    at = Number(o.at);
  }
  const { format, quote } = readOrUsage('quote file', file, (p) => decodeQuoteFile(readFileSync(p)));
  const collateral: Collateral = readOrUsage('collateral file', o.collateral, (p) =>
    normalizeCollateral(JSON.parse(readFileSync(p, 'utf8'))),
  );
  const policy = o.policy === undefined ? undefined : readOrUsage('policy file', o.policy, (p) => loadPolicy(p));

  const override = readRootOverride(o.rootCa);
  const root = override?.der;
  const report = await verifyQuote(quote, collateral, at, {
    ...(override !== undefined ? override.verifier_options : {}),
    ...(policy !== undefined ? { policy } : {}),
  });
  const verdict = policy === undefined ? null : measurementVerdict(policy, report, o);
  const ok = report.ok && (verdict === null || verdict.allowed);
  const reasons = [...report.reasons, ...(verdict?.reasons ?? [])];

  if (o.json === true) {
    const out = {
      ...report,
      ok,
      quote_verified: report.ok,
      reasons,
      file,
      format,
      quote_bytes: quote.length,
      at,
      at_iso: iso(at),
      root_ca: root === undefined || root.equals(INTEL_SGX_ROOT_CA_DER) ? 'intel' : 'test-override',
      policy: verdict,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    const rows: Array<[string, string]> = [
      [
        'Quote',
        `${file} (${format}, ${quote.length} bytes${report.quote_version !== null ? `, TDX v${report.quote_version}` : ''})`,
      ],
      ['Verified at', `${iso(at)} (${at})`],
      [
        'Root CA',
        root === undefined || root.equals(INTEL_SGX_ROOT_CA_DER)
          ? 'Intel SGX Root CA'
          : `TEST OVERRIDE ${o.rootCa} (not Intel)`,
      ],
      ['Result', ok ? 'OK' : 'FAILED'],
      ['TCB status', report.tcb_status ?? '-'],
      ...(report.tdx_module_tcb_status !== null
        ? ([['TDX module TCB', report.tdx_module_tcb_status]] as Array<[string, string]>)
        : []),
      ['Advisories', report.advisory_ids.length > 0 ? report.advisory_ids.join(', ') : 'none'],
      [
        'FMSPC',
        report.fmspc === null ? '-' : `${report.fmspc}${report.pck_ca !== null ? ` (PCK ${report.pck_ca} CA)` : ''}`,
      ],
      ['MRTD', report.mrtd ?? '-'],
      ['RTMR0', report.rtmr0 ?? '-'],
      ['RTMR1', report.rtmr1 ?? '-'],
      ['RTMR2', report.rtmr2 ?? '-'],
      ['RTMR3', report.rtmr3 ?? '-'],
      ['REPORTDATA', report.report_data ?? '-'],
      ['TD attributes', report.td_attributes ?? '-'],
      ['XFAM', report.xfam ?? '-'],
      ['Evidence hash', report.evidence_hash ?? '-'],
      [
        'Policy',
        verdict === null
          ? '(none given)'
          : `${verdict.version}: ${verdict.allowed ? 'ALLOWED' : 'REFUSED'}${verdict.matched_releases.length > 0 ? ` (${verdict.matched_releases.join(', ')})` : ''}`,
      ],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    let text = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
    if (reasons.length > 0) text += `\nReasons:\n${reasons.map((r) => `  - ${r}`).join('\n')}`;
    process.stdout.write(`${text}\n`);
  }
  process.exitCode = ok ? 0 : 1;
}
