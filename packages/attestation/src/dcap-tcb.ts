// TCB level matching, the same algorithm as dcap-qvl 0.3.9 (so the statuses can be cross-checked), used for
// the grace-window start and the TDX module identity, which dcap-qvl does not look at (step 6 of dcap-pipeline.ts).
import type { Collateral } from './collateral-normalize.js';
import type { IsvTcbLevel, TcbInfo, TcbLevel } from './collateral-schema.js';
import { DCAP_REASONS } from './dcap-reasons.js';
import type { PckInfo } from './pck.js';
import { OUT_OF_DATE_STATUSES } from './policy.js';
import type { TdxQuote } from './quote.js';

const SEVERITY: Record<string, number> = {
  UpToDate: 0,
  SWHardeningNeeded: 1,
  ConfigurationNeeded: 2,
  ConfigurationAndSWHardeningNeeded: 3,
  OutOfDate: 4,
  OutOfDateConfigurationNeeded: 5,
  Revoked: 6,
};
const worse = (a: string, b: string): string => ((SEVERITY[b] ?? 100) > (SEVERITY[a] ?? 100) ? b : a);

function geq(actual: ArrayLike<number>, required: { svn: number }[]): boolean {
  if (actual.length !== required.length) return false;
  for (let i = 0; i < required.length; i++)
    if ((actual[i] as number) < (required[i] as { svn: number }).svn) return false;
  return true;
}

export function matchPlatformTcbLevel(
  info: TcbInfo,
  pck: Pick<PckInfo, 'cpusvn' | 'pcesvn'>,
  teeTcbSvn: Buffer,
): number {
  return info.tcbLevels.findIndex(
    (l) =>
      pck.pcesvn >= l.tcb.pcesvn &&
      geq(pck.cpusvn, l.tcb.sgxtcbcomponents) &&
      geq(teeTcbSvn, l.tcb.tdxtcbcomponents ?? []),
  );
}

export function matchIsvTcbLevel(levels: IsvTcbLevel[], isvsvn: number): number {
  return levels.findIndex((l) => isvsvn >= l.tcb.isvsvn);
}

/** When a matched level stopped being current: the oldest tcbDate among the newer levels (policy.ts). */
function graceStart(levels: (TcbLevel | IsvTcbLevel)[], idx: number): number {
  const newer = levels.slice(0, idx).map((l) => Date.parse(l.tcbDate));
  return newer.length > 0 ? Math.min(...newer) : Date.parse((levels[idx] as TcbLevel | IsvTcbLevel).tcbDate);
}

interface TcbOutcome {
  reasons: string[];
  status: string;
  advisory_ids: string[];
  tdx_module_status: string | null;
  grace_start: string | null;
}

export function tcbStep(
  q: TdxQuote,
  pck: PckInfo,
  c: Collateral,
  dcap: { status: string; advisory_ids: string[] },
): TcbOutcome {
  const reasons: string[] = [];
  const info = c.tcb_info_parsed;
  const qe = c.qe_identity_parsed;
  const graceStarts: number[] = [];
  const isOod = (s: string): boolean => OUT_OF_DATE_STATUSES.includes(s);

  const p = matchPlatformTcbLevel(info, pck, q.td.tee_tcb_svn);
  const e = matchIsvTcbLevel(qe.tcbLevels, q.signature.qe_report_parsed.isvsvn);
  if (p < 0) reasons.push(DCAP_REASONS.noTcbLevel);
  if (e < 0) reasons.push(DCAP_REASONS.noQeLevel);
  if (p >= 0 && e >= 0) {
    const pl = info.tcbLevels[p] as TcbLevel;
    const el = qe.tcbLevels[e] as IsvTcbLevel;
    const ours = worse(pl.tcbStatus, el.tcbStatus);
    if (ours !== dcap.status) reasons.push(DCAP_REASONS.statusDisagreement(ours, dcap.status));
    if (isOod(pl.tcbStatus)) graceStarts.push(graceStart(info.tcbLevels, p));
    if (isOod(el.tcbStatus)) graceStarts.push(graceStart(qe.tcbLevels, e));
  }

  // TDX module identity: TEE_TCB_SVN[1] is the module's major version, [0] its SVN.
  let moduleStatus: string | null = null;
  const advisories = [...dcap.advisory_ids];
  const version = q.td.tee_tcb_svn[1] as number;
  const eqMasked = (actual: Buffer, expectedHex: string, maskHex: string): boolean => {
    const exp = Buffer.from(expectedHex, 'hex');
    const mask = Buffer.from(maskHex, 'hex');
    return (
      actual.length === exp.length &&
      actual.every((b, i) => (b & (mask[i] as number)) === ((exp[i] as number) & (mask[i] as number)))
    );
  };
  if (version > 0 && info.tdxModuleIdentities !== undefined) {
    const id = `TDX_${version.toString(16).padStart(2, '0').toUpperCase()}`;
    const ident = info.tdxModuleIdentities.find((m) => m.id.toUpperCase() === id);
    if (ident === undefined) {
      reasons.push(DCAP_REASONS.tdxModuleMissing(id));
    } else {
      if (!Buffer.from(ident.mrsigner, 'hex').equals(q.td.mrsignerseam)) reasons.push(DCAP_REASONS.tdxModuleSigner);
      if (!eqMasked(q.td.seam_attributes, ident.attributes, ident.attributesMask))
        reasons.push(DCAP_REASONS.tdxModuleAttributes);
      const m = matchIsvTcbLevel(ident.tcbLevels, q.td.tee_tcb_svn[0] as number);
      if (m < 0) {
        reasons.push(DCAP_REASONS.tdxModuleSvn);
      } else {
        const ml = ident.tcbLevels[m] as IsvTcbLevel;
        moduleStatus = ml.tcbStatus;
        if (moduleStatus === 'Revoked') reasons.push(DCAP_REASONS.tdxModuleRevoked);
        if (isOod(moduleStatus)) graceStarts.push(graceStart(ident.tcbLevels, m));
        for (const a of ml.advisoryIDs ?? []) if (!advisories.includes(a)) advisories.push(a);
      }
    }
  } else if (info.tdxModule !== undefined) {
    if (!Buffer.from(info.tdxModule.mrsigner, 'hex').equals(q.td.mrsignerseam))
      reasons.push(DCAP_REASONS.tdxModuleSigner);
    if (!eqMasked(q.td.seam_attributes, info.tdxModule.attributes, info.tdxModule.attributesMask))
      reasons.push(DCAP_REASONS.tdxModuleAttributes);
  }

  const status = moduleStatus === null ? dcap.status : worse(dcap.status, moduleStatus);
  const start = isOod(status) && graceStarts.length > 0 ? new Date(Math.min(...graceStarts)).toISOString() : null;
  return { reasons, status, advisory_ids: advisories, tdx_module_status: moduleStatus, grace_start: start };
}
