// `ee attestation fetch` and `ee attestation verify` (flags in commands/attestation.ts; this module is loaded
// when they run): evidence from the control plane itself (GET /v1/attestation) or from an app's agent
// (GET /v1/apps/:app/attestation), challenged with a fresh random nonce, and verified here, locally
// (attest-verify.ts), against an attestation policy.
import { readFileSync, writeFileSync } from 'node:fs';
import {
  FileCollateralSource,
  loadPolicy,
  newNonce,
  parseNonceHex,
  PccsCollateralSource,
  REPORT_DATA_DOMAINS,
  type CollateralSource,
} from '@easyenclave/attestation';
import { APP_NAME_RE } from '@easyenclave/protocol';
import { EvidenceSchema, type Evidence } from '@easyenclave/sdk';
import { verifyEvidence, type EvidenceVerdict } from './attest-verify.js';
import { apiRequest, baseUrlText, resolveConnection, type GlobalOptions } from './client.js';
import { CliError, usageError } from './errors.js';
import { formatFields, printResult, withProgress } from './output.js';
import { readRootOverride } from './root-ca.js';

/** Default wait for evidence: a TDX quote through configfs-tsm may take up to 20 s on the server. */
export const ATTESTATION_TIMEOUT_MS = 30_000;

interface SourceOptions extends GlobalOptions {
  app?: string;
  nonce?: string;
  json?: boolean;
}

export interface FetchOptions extends SourceOptions {
  out?: string;
}

export interface VerifyOptions extends SourceOptions {
  evidence?: string;
  policy: string;
  collateral?: string;
  pccsUrl?: string;
  network?: string;
  requireTdx?: boolean;
  rootCa?: string;
}

function nonceFrom(hex: string | undefined): Buffer {
  if (hex === undefined) return newNonce();
  try {
    return parseNonceHex(hex);
  } catch {
    throw usageError('--nonce must be exactly 64 hex characters (32 bytes); omit it to use a fresh random nonce');
  }
}

function checkApp(app: string | undefined): void {
  if (app !== undefined && !APP_NAME_RE.test(app))
    throw usageError(`--app must be an app name (a DNS label: a-z, 0-9, inner hyphens), got "${app.slice(0, 80)}"`);
}

/** Challenges the control plane (or the app's agent through it) with `nonce` and checks the answer's shape. */
async function fetchEvidence(o: SourceOptions, nonce: Buffer): Promise<Evidence> {
  const conn = resolveConnection(o);
  const timeout_ms = o.timeoutMs === undefined ? ATTESTATION_TIMEOUT_MS : conn.timeout_ms;
  const path = o.app === undefined ? '/v1/attestation' : `/v1/apps/${encodeURIComponent(o.app)}/attestation`;
  const what = o.app === undefined ? 'the control plane' : `app ${o.app}`;
  const ev = await withProgress(`fetching attestation evidence from ${what}`, () =>
    apiRequest(
      { path, query: { nonce: nonce.toString('hex') }, auth: 'none', schema: EvidenceSchema, timeout_ms },
      conn,
    ),
  );
  if (o.app !== undefined && ev.app !== undefined && ev.app !== o.app)
    throw new CliError(`wrong_app: asked for app ${o.app}, the evidence is for app ${ev.app}`);
  return ev;
}

const evidenceFields = (ev: Evidence): Array<[string, string | null]> => [
  ['Evidence type', ev.sandbox ? `${ev.evidence_type} (SANDBOX: development only)` : ev.evidence_type],
  ...(ev.app !== undefined
    ? ([
        ['App', ev.app],
        ['Agent', ev.agent_id ?? null],
        ['Network', ev.network ?? null],
      ] as Array<[string, string | null]>)
    : []),
  ['Release', `${ev.repo}@${ev.release_tag}`],
  ['Nonce', ev.nonce],
  ['report_data', ev.report_data],
  [
    'Keyset',
    Object.entries(ev.keyset)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' '),
  ],
  ['Quote', `${Buffer.from(ev.quote, 'base64').length} bytes`],
  ['MRTD', ev.measurements?.mrtd ?? null],
];

export async function fetchCommand(o: FetchOptions): Promise<void> {
  checkApp(o.app);
  const nonce = nonceFrom(o.nonce);
  const ev = await fetchEvidence(o, nonce);
  if (ev.nonce.toLowerCase() !== nonce.toString('hex'))
    throw new CliError('wrong_nonce: the evidence answers another nonce than the one sent');
  if (o.out !== undefined) {
    try {
      writeFileSync(o.out, `${JSON.stringify(ev, null, 2)}\n`);
    } catch (err) {
      throw usageError(`cannot write ${o.out}: ${(err as Error).message}`);
    }
  }
  printResult(ev, {
    json: o.json,
    table: (e) =>
      `${formatFields([...evidenceFields(e), ...(o.out !== undefined ? ([['Saved to', o.out]] as Array<[string, string]>) : [])])}\n` +
      `\nNot verified yet: ee attestation verify --policy <file>${o.out !== undefined ? ` --evidence ${o.out}` : o.app !== undefined ? ` --app ${o.app}` : ''}`,
  });
}

function readEvidenceFile(path: string): Evidence {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw usageError(`cannot read evidence file ${path}: ${(err as Error).message}`);
  }
  const r = EvidenceSchema.safeParse(json);
  if (!r.success)
    throw usageError(
      `evidence file ${path} is not attestation evidence: ${r.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
        .join('; ')}`,
    );
  return r.data;
}

function collateralSource(o: VerifyOptions): () => CollateralSource {
  if (o.collateral !== undefined) {
    const path = o.collateral;
    // Read up front: an unreadable file is a usage error whatever the evidence turns out to be.
    let source: FileCollateralSource;
    try {
      source = new FileCollateralSource(path);
    } catch (err) {
      throw usageError((err as Error).message);
    }
    return () => source;
  }
  return () =>
    new PccsCollateralSource({
      ...(o.pccsUrl !== undefined ? { url: o.pccsUrl } : {}),
      logger: { warn: (m) => void process.stderr.write(`ee: ${m}\n`) },
    });
}

const verdictTable = (v: EvidenceVerdict, source: string): string => {
  const mark = (c: { ok: boolean }) => (c.ok ? 'ok' : 'FAILED');
  let text = formatFields([
    ['Source', source],
    ['Result', v.ok ? 'OK' : 'FAILED'],
    ['Evidence type', v.sandbox ? 'sandbox (SANDBOX: development only)' : v.evidence_type],
    ['Release', `${v.subject.repo}@${v.subject.release_tag}`],
    ['Network', `${v.subject.network}${v.sealed_required ? ' (TDX required)' : ''}`],
    ['Nonce', `${mark(v.checks.nonce)}  ${v.nonce}`],
    ['report_data', mark(v.checks.report_data)],
    ['Quote', `${mark(v.checks.quote)}${v.tcb_status !== null ? `  TCB ${v.tcb_status}` : ''}`],
    ['Policy', `${mark(v.checks.policy)}  ${v.policy_version}`],
    ['MRTD', v.measurements?.mrtd ?? null],
    ['RTMR0', v.measurements?.rtmr0 ?? null],
    ['RTMR1', v.measurements?.rtmr1 ?? null],
    ['RTMR2', v.measurements?.rtmr2 ?? null],
    ['RTMR3', v.measurements?.rtmr3 ?? null],
    ['Evidence hash', v.evidence_hash],
  ]);
  if (v.reasons.length > 0) text += `\nReasons:\n${v.reasons.map((r) => `  - ${r}`).join('\n')}`;
  if (v.warnings.length > 0) text += `\n${v.warnings.map((w) => `WARNING: ${w}`).join('\n')}`;
  return text;
};

export async function verifyCommand(o: VerifyOptions): Promise<void> {
  checkApp(o.app);
  if (o.evidence !== undefined && o.app !== undefined)
    throw usageError('--evidence and --app do not go together: the file says whose evidence it is');
  if (o.collateral !== undefined && o.pccsUrl !== undefined)
    throw usageError('--collateral and --pccs-url do not go together');
  let policy;
  try {
    policy = loadPolicy(o.policy);
  } catch (err) {
    throw usageError((err as Error).message);
  }
  const collateral = collateralSource(o);
  const root = readRootOverride(o.rootCa);

  let evidence: Evidence;
  let nonce: Buffer;
  let source: string;
  if (o.evidence !== undefined) {
    evidence = readEvidenceFile(o.evidence);
    // A saved file proves freshness only for a nonce the user generated and kept; say which one is used.
    nonce = o.nonce !== undefined ? nonceFrom(o.nonce) : Buffer.from(evidence.nonce, 'hex');
    source = `${o.evidence}${o.nonce === undefined ? ' (nonce taken from the file: freshness not checked)' : ''}`;
  } else {
    nonce = nonceFrom(o.nonce);
    evidence = await fetchEvidence(o, nonce);
    const conn = resolveConnection(o);
    source = `${baseUrlText(conn)}${o.app !== undefined ? ` app ${o.app}` : ' (control plane)'}`;
  }
  const network = o.network ?? evidence.network ?? (evidence.sandbox ? 'sandbox-1' : 'forge-1');
  // An app's agent answers a relayed nonce in the relay domain, the control plane in its own: evidence
  // relabelled as the other kind fails the report_data check.
  const domain = (o.app ?? evidence.app) !== undefined ? REPORT_DATA_DOMAINS.relay : REPORT_DATA_DOMAINS.self;
  const verdict = await withProgress('verifying the evidence', () =>
    verifyEvidence({
      evidence,
      domain,
      nonce,
      policy,
      network,
      require_tdx: o.requireTdx === true,
      collateral,
      root,
      now_ms: Date.now(),
    }),
  );
  printResult({ ...verdict, source }, { json: o.json, table: (v) => verdictTable(v, source) });
  process.exitCode = verdict.ok ? 0 : 1;
}
