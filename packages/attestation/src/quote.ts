// Our own strict parser for Intel TDX DCAP quotes, v4 (TD 1.0 report) and v5 (TD 1.0 or TD 1.5 report).
// It runs before any cryptography, so a malformed or oversized input is refused cheaply with a specific
// reason, and so that the fields we act on (measurements, report_data) come from our parse, not from a
// library's. dcap-qvl parses the same bytes again when it checks signatures; dcap-core.ts cross-checks the two.
//
// Layout (all integers little-endian):
//   header (48)      version u16 | att. key type u16 | TEE type u32 | QE SVN u16 | PCE SVN u16 | QE vendor id 16 | user data 20
//   v5 only (6)      body type u16 (2 = TD 1.0, 3 = TD 1.5) | body size u32 (584 or 648)
//   TD report        584 bytes (TD 1.0) or 648 (TD 1.5)
//   sig data len u32
//   sig data         ECDSA signature 64 (over header [‖ body descriptor] ‖ report) | attestation key 64 |
//                    cert data type u16 (must be 6) | size u32 | QE report 384 | QE report signature 64 |
//                    QE auth data size u16 | QE auth data | cert data type u16 (must be 5) | size u32 | PCK chain (PEM)
//   padding          zero bytes only (real quotes arrive zero-padded)
import { splitPemChain } from './x509.js';

export const QUOTE_MAX_BYTES = 64 * 1024;
export const TEE_TYPE_TDX = 0x81;
export const TEE_TYPE_SGX = 0x00;
export const ATTESTATION_KEY_TYPE_ECDSA_P256 = 2;
export const INTEL_QE_VENDOR_ID: Buffer = Buffer.from('939a7233f79c4ca9940a0db3957f0607', 'hex');

export const HEADER_LENGTH = 48;
export const BODY_DESCRIPTOR_LENGTH = 6;
export const TD10_REPORT_LENGTH = 584;
export const TD15_REPORT_LENGTH = 648;
export const QE_REPORT_LENGTH = 384;
const CERT_DATA_QE_REPORT = 6;
const CERT_DATA_PCK_CHAIN = 5;

export const QUOTE_REASONS = {
  notBuffer: 'quote must be a byte buffer',
  sgx: 'SGX quote where a TDX quote is required',
  debug: 'debug TD: the DEBUG bit (bit 0) of the TD attributes is set',
  septVeDisable: 'SEPT_VE_DISABLE (TD attributes bit 28) is not set',
  mrServiceTd: 'MRSERVICETD is not zero (service TDs are not accepted)',
  trailing: 'quote has non-zero bytes after its signature data',
  vendor: `QE vendor id is not Intel's (${INTEL_QE_VENDOR_ID.toString('hex')})`,
} as const;

/** Why a quote could not be parsed; `reasons` lists every header problem found, never empty. */
export class QuoteParseError extends Error {
  readonly reasons: string[];
  /** True when the header at least identified a TDX quote. */
  readonly tdx: boolean;
  constructor(reasons: string[], tdx: boolean) {
    super(reasons.join('; '));
    this.name = 'QuoteParseError';
    this.reasons = reasons;
    this.tdx = tdx;
  }
}

export interface TdReport {
  tee_tcb_svn: Buffer;
  mrseam: Buffer;
  mrsignerseam: Buffer;
  seam_attributes: Buffer;
  td_attributes: Buffer;
  xfam: Buffer;
  mrtd: Buffer;
  mrconfigid: Buffer;
  mrowner: Buffer;
  mrownerconfig: Buffer;
  rtmr0: Buffer;
  rtmr1: Buffer;
  rtmr2: Buffer;
  rtmr3: Buffer;
  report_data: Buffer;
  /** TD 1.5 only. */
  tee_tcb_svn2?: Buffer;
  /** TD 1.5 only. */
  mrservicetd?: Buffer;
}

/** The QE's SGX enclave report (384 bytes). */
export interface QeReport {
  cpusvn: Buffer;
  miscselect: number;
  attributes: Buffer;
  mrenclave: Buffer;
  mrsigner: Buffer;
  isvprodid: number;
  isvsvn: number;
  report_data: Buffer;
}

export interface QuoteSignatureData {
  /** r ‖ s, 64 bytes, over `signed_bytes`. */
  ecdsa_signature: Buffer;
  /** Uncompressed P-256 point without the 0x04 prefix (x ‖ y, 64 bytes). */
  attestation_key: Buffer;
  qe_report: Buffer;
  qe_report_parsed: QeReport;
  /** r ‖ s, 64 bytes, by the PCK key over `qe_report`. */
  qe_report_signature: Buffer;
  qe_auth_data: Buffer;
  /** Always 5 (PCK certificate chain) after a successful parse. */
  certification_data_type: number;
  pck_chain_pem: Buffer;
  /** DER certificates, leaf first. */
  pck_chain_der: Buffer[];
}

export interface TdxQuote {
  version: 4 | 5;
  attestation_key_type: number;
  tee_type: number;
  qe_svn: number;
  pce_svn: number;
  qe_vendor_id: Buffer;
  user_data: Buffer;
  /** 2 = TD 1.0 report, 3 = TD 1.5 report (v4 quotes are always 2). */
  body_type: 2 | 3;
  header: Buffer;
  /** The bytes the attestation key signs: header [‖ body descriptor] ‖ TD report. */
  signed_bytes: Buffer;
  td: TdReport;
  /** All of the signature data, as it appears in the quote. */
  signature_data: Buffer;
  signature: QuoteSignatureData;
  /** Bytes used by the quote proper (the input minus its zero padding). */
  length: number;
}

/** Bounds-checked little-endian reader; every overrun names the field that was cut short. */
class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly limit: number,
  ) {}
  take(n: number, what: string): Buffer {
    if (this.pos + n > this.limit) {
      throw new QuoteParseError(
        [
          `quote is truncated: ${what} needs ${n} bytes at offset ${this.pos}, ${Math.max(0, this.limit - this.pos)} left`,
        ],
        true,
      );
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u16(what: string): number {
    return this.take(2, what).readUInt16LE(0);
  }
  u32(what: string): number {
    return this.take(4, what).readUInt32LE(0);
  }
}

const copy = (b: Buffer): Buffer => Buffer.from(b);

function parseTdReport(r: Reader, td15: boolean): TdReport {
  const m = (n: number, what: string): Buffer => copy(r.take(n, `TD report ${what}`));
  const td: TdReport = {
    tee_tcb_svn: m(16, 'TEE_TCB_SVN'),
    mrseam: m(48, 'MRSEAM'),
    mrsignerseam: m(48, 'MRSIGNERSEAM'),
    seam_attributes: m(8, 'SEAM attributes'),
    td_attributes: m(8, 'TD attributes'),
    xfam: m(8, 'XFAM'),
    mrtd: m(48, 'MRTD'),
    mrconfigid: m(48, 'MRCONFIGID'),
    mrowner: m(48, 'MROWNER'),
    mrownerconfig: m(48, 'MROWNERCONFIG'),
    rtmr0: m(48, 'RTMR0'),
    rtmr1: m(48, 'RTMR1'),
    rtmr2: m(48, 'RTMR2'),
    rtmr3: m(48, 'RTMR3'),
    report_data: m(64, 'REPORTDATA'),
  };
  if (td15) {
    td.tee_tcb_svn2 = m(16, 'TEE_TCB_SVN2');
    td.mrservicetd = m(48, 'MRSERVICETD');
  }
  return td;
}

export function parseQeReport(raw: Buffer): QeReport {
  if (raw.length !== QE_REPORT_LENGTH) throw new Error(`QE report must be ${QE_REPORT_LENGTH} bytes`);
  return {
    cpusvn: copy(raw.subarray(0, 16)),
    miscselect: raw.readUInt32LE(16),
    attributes: copy(raw.subarray(48, 64)),
    mrenclave: copy(raw.subarray(64, 96)),
    mrsigner: copy(raw.subarray(128, 160)),
    isvprodid: raw.readUInt16LE(256),
    isvsvn: raw.readUInt16LE(258),
    report_data: copy(raw.subarray(320, 384)),
  };
}

/**
 * Checks the 48-byte header, collecting every problem. Returns the reasons (empty when the header is that
 * of a TDX v4/v5 ECDSA-P256 quote from Intel's QE).
 */
export function headerReasons(header: Buffer): string[] {
  const reasons: string[] = [];
  const version = header.readUInt16LE(0);
  const keyType = header.readUInt16LE(2);
  const teeType = header.readUInt32LE(4);
  if (teeType === TEE_TYPE_SGX) reasons.push(QUOTE_REASONS.sgx);
  else if (teeType !== TEE_TYPE_TDX) reasons.push(`unknown TEE type 0x${teeType.toString(16)} (expected 0x81, TDX)`);
  if (version !== 4 && version !== 5) reasons.push(`unsupported quote version ${version} (expected 4 or 5)`);
  if (keyType !== ATTESTATION_KEY_TYPE_ECDSA_P256)
    reasons.push(`unsupported attestation key type ${keyType} (expected 2, ECDSA-256 with P-256)`);
  if (!header.subarray(12, 28).equals(INTEL_QE_VENDOR_ID)) reasons.push(QUOTE_REASONS.vendor);
  return reasons;
}

/** Strict parse; throws QuoteParseError with specific reasons. Does not check any signature. */
export function parseTdxQuote(buf: Buffer): TdxQuote {
  if (!Buffer.isBuffer(buf)) throw new QuoteParseError([QUOTE_REASONS.notBuffer], false);
  if (buf.length > QUOTE_MAX_BYTES) {
    throw new QuoteParseError([`quote is too large: ${buf.length} bytes (max ${QUOTE_MAX_BYTES})`], false);
  }
  if (buf.length < HEADER_LENGTH) {
    throw new QuoteParseError(
      [`quote is truncated: ${buf.length} bytes is shorter than the ${HEADER_LENGTH}-byte header`],
      false,
    );
  }
  const r = new Reader(buf, buf.length);
  const header = r.take(HEADER_LENGTH, 'header');
  const hreasons = headerReasons(header);
  const isTdx = header.readUInt32LE(4) === TEE_TYPE_TDX;
  if (hreasons.length > 0) throw new QuoteParseError(hreasons, isTdx);
  const version = header.readUInt16LE(0) as 4 | 5;

  let bodyType: 2 | 3 = 2;
  if (version === 5) {
    const type = r.u16('v5 body type');
    const size = r.u32('v5 body size');
    if (type === 1)
      throw new QuoteParseError([`v5 quote carries an SGX enclave report (body type 1): ${QUOTE_REASONS.sgx}`], true);
    if (type !== 2 && type !== 3)
      throw new QuoteParseError([`unsupported v5 body type ${type} (expected 2 or 3)`], true);
    const expected = type === 2 ? TD10_REPORT_LENGTH : TD15_REPORT_LENGTH;
    if (size !== expected)
      throw new QuoteParseError([`v5 body size ${size} does not match body type ${type} (expected ${expected})`], true);
    bodyType = type;
  }
  const td = parseTdReport(r, bodyType === 3);
  const signedBytes = buf.subarray(0, r.pos);

  const sigLen = r.u32('signature data length');
  if (r.pos + sigLen > buf.length) {
    throw new QuoteParseError(
      [`quote is truncated: signature data declares ${sigLen} bytes, ${buf.length - r.pos} left`],
      true,
    );
  }
  const sigStart = r.pos;
  const end = sigStart + sigLen;
  for (let i = end; i < buf.length; i++) {
    if (buf[i] !== 0) throw new QuoteParseError([QUOTE_REASONS.trailing], true);
  }
  const s = new Reader(buf.subarray(0, end), end);
  s.pos = sigStart;
  const ecdsaSignature = copy(s.take(64, 'quote signature'));
  const attestationKey = copy(s.take(64, 'attestation key'));
  const certType = s.u16('certification data type');
  const certSize = s.u32('certification data size');
  if (certType !== CERT_DATA_QE_REPORT) {
    throw new QuoteParseError(
      [`unsupported certification data type ${certType} (expected 6, QE report certification data)`],
      true,
    );
  }
  if (s.pos + certSize !== end) {
    throw new QuoteParseError(
      [`certification data size ${certSize} does not match the signature data (${end - s.pos} bytes left)`],
      true,
    );
  }
  const qeReport = copy(s.take(QE_REPORT_LENGTH, 'QE report'));
  const qeReportSignature = copy(s.take(64, 'QE report signature'));
  const authSize = s.u16('QE auth data size');
  const qeAuthData = copy(s.take(authSize, 'QE auth data'));
  const innerType = s.u16('PCK certification data type');
  const innerSize = s.u32('PCK certification data size');
  if (innerType !== CERT_DATA_PCK_CHAIN) {
    throw new QuoteParseError(
      [`unsupported PCK certification data type ${innerType} (expected 5, PCK certificate chain)`],
      true,
    );
  }
  if (s.pos + innerSize !== end) {
    throw new QuoteParseError(
      [`PCK certification data size ${innerSize} does not match the signature data (${end - s.pos} bytes left)`],
      true,
    );
  }
  const chainPem = copy(s.take(innerSize, 'PCK certificate chain'));
  let chainDer: Buffer[];
  try {
    chainDer = splitPemChain(chainPem);
  } catch (err) {
    throw new QuoteParseError([`malformed PCK certificate chain in the quote: ${(err as Error).message}`], true);
  }

  return {
    version,
    attestation_key_type: header.readUInt16LE(2),
    tee_type: header.readUInt32LE(4),
    qe_svn: header.readUInt16LE(8),
    pce_svn: header.readUInt16LE(10),
    qe_vendor_id: copy(header.subarray(12, 28)),
    user_data: copy(header.subarray(28, 48)),
    body_type: bodyType,
    header: copy(header),
    signed_bytes: copy(signedBytes),
    td,
    signature_data: copy(buf.subarray(sigStart, end)),
    signature: {
      ecdsa_signature: ecdsaSignature,
      attestation_key: attestationKey,
      qe_report: qeReport,
      qe_report_parsed: parseQeReport(qeReport),
      qe_report_signature: qeReportSignature,
      qe_auth_data: qeAuthData,
      certification_data_type: innerType,
      pck_chain_pem: chainPem,
      pck_chain_der: chainDer,
    },
    length: end,
  };
}

// TD attributes (64-bit, little-endian). Bits we accept: 0 DEBUG (accepted by the parser, rejected by the
// verifier), 28 SEPT_VE_DISABLE, 30 PKS, 31 KL, 63 PERFMON. Everything else is reserved and must be zero;
// the same definition dcap-qvl 0.3.9 applies, so we never accept what it would refuse.
const TD_ATTR_DEBUG = 1n;
const TD_ATTR_SEPT_VE_DISABLE = 1n << 28n;
const TD_ATTR_KNOWN = TD_ATTR_DEBUG | TD_ATTR_SEPT_VE_DISABLE | (1n << 30n) | (1n << 31n) | (1n << 63n);

export function tdAttributesValue(td_attributes: Buffer): bigint {
  return td_attributes.readBigUInt64LE(0);
}

export function isDebugTd(td_attributes: Buffer): boolean {
  return (tdAttributesValue(td_attributes) & TD_ATTR_DEBUG) !== 0n;
}

/** The attribute checks every TDX quote must pass, whatever the policy. */
export function tdReportReasons(td: TdReport): string[] {
  const reasons: string[] = [];
  const attrs = tdAttributesValue(td.td_attributes);
  if ((attrs & TD_ATTR_DEBUG) !== 0n) reasons.push(QUOTE_REASONS.debug);
  const reserved = attrs & ~TD_ATTR_KNOWN & 0xffff_ffff_ffff_ffffn;
  if (reserved !== 0n)
    reasons.push(`reserved TD attribute bits are set (0x${reserved.toString(16).padStart(16, '0')})`);
  if ((attrs & TD_ATTR_SEPT_VE_DISABLE) === 0n) reasons.push(QUOTE_REASONS.septVeDisable);
  if (td.mrservicetd !== undefined && td.mrservicetd.some((b) => b !== 0)) reasons.push(QUOTE_REASONS.mrServiceTd);
  return reasons;
}
