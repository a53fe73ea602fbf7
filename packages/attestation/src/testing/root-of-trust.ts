// TEST ROOT OF TRUST — FOR TESTS ONLY. NEVER USED IN PRODUCTION.
//
// Generated fresh per test run (node:crypto + @peculiar/x509): a root CA standing in for Intel's SGX Root
// CA, the two PCK CAs (Platform and Processor, with Intel's CNs, because that is how the issuing CA is
// identified), a PCK leaf under each with Intel's SGX extension, a TCB signing certificate, TCB info (v3,
// TDX) and QE identity signed the way Intel signs them (ECDSA P-256 over the exact JSON text of the
// tcbInfo/enclaveIdentity member, r‖s hex), root and PCK CRLs, and a builder for v4/v5 TDX quotes (quote
// signed by the QE's attestation key, QE report signed by the PCK key and binding the attestation key).
// Every knob that produces a bad case is explicit. A DcapVerifier accepts these only through
// DcapVerifier.newWithRootCa, which logs loudly that the root is not Intel's.
import { createHash, KeyObject, randomBytes, sign as cryptoSign, webcrypto } from 'node:crypto';
import type { DcapCollateral } from '../collateral-schema.js';
import { derToPem, x509 } from '../x509.js';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
const EC_GEN = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
const ORG = 'O=easyenclave TEST root of trust (not Intel), L=Santa Clara, ST=CA, C=US';

export const TEST_NAMES = {
  root: `CN=EE Test SGX Root CA, ${ORG}`,
  platform: `CN=Intel SGX PCK Platform CA, ${ORG}`,
  processor: `CN=Intel SGX PCK Processor CA, ${ORG}`,
  tcbSigning: `CN=EE Test SGX TCB Signing, ${ORG}`,
  pck: `CN=Intel SGX PCK Certificate, ${ORG}`,
} as const;

export interface TestKey {
  keys: CryptoKeyPair;
  /** node:crypto private key, for signing quotes, QE reports and JSON. */
  private: KeyObject;
  /** Uncompressed public point without the 0x04 prefix (64 bytes). */
  public_raw: Buffer;
}

export interface TestCert extends TestKey {
  cert: x509.X509Certificate;
  der: Buffer;
  pem: string;
  serial: string;
}

// ---- small DER encoder for the SGX extension --------------------------------------------------------------

function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, content: Buffer): Buffer =>
  Buffer.concat([Buffer.from([tag]), derLen(content.length), content]);
const dSeq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const dOctets = (b: Buffer): Buffer => tlv(0x04, b);
function dOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [(arcs[0] as number) * 40 + (arcs[1] as number)];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
function dUint(tag: number, n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (bytes.length === 0 || ((bytes[0] as number) & 0x80) !== 0) bytes.unshift(0);
  return tlv(tag, Buffer.from(bytes));
}

const SGX = '1.2.840.113741.1.13.1';

export interface SgxExtensionParams {
  ppid: Buffer;
  /** 16 SGX TCB component SVNs (also CPUSVN). */
  cpusvn: number[];
  pcesvn: number;
  pce_id: Buffer;
  fmspc: Buffer;
  sgx_type?: number;
  platform_instance_id?: Buffer;
  /** Write a CPUSVN that differs from the components (a malformed certificate). */
  cpusvn_override?: Buffer;
}

export function encodeSgxExtension(p: SgxExtensionParams): Buffer {
  const comps = p.cpusvn.map((svn, i) => dSeq(dOid(`${SGX}.2.${i + 1}`), dUint(0x02, svn)));
  const items = [
    dSeq(dOid(`${SGX}.1`), dOctets(p.ppid)),
    dSeq(
      dOid(`${SGX}.2`),
      dSeq(
        ...comps,
        dSeq(dOid(`${SGX}.2.17`), dUint(0x02, p.pcesvn)),
        dSeq(dOid(`${SGX}.2.18`), dOctets(p.cpusvn_override ?? Buffer.from(p.cpusvn))),
      ),
    ),
    dSeq(dOid(`${SGX}.3`), dOctets(p.pce_id)),
    dSeq(dOid(`${SGX}.4`), dOctets(p.fmspc)),
    dSeq(dOid(`${SGX}.5`), dUint(0x0a, p.sgx_type ?? 0)),
  ];
  if (p.platform_instance_id !== undefined) items.push(dSeq(dOid(`${SGX}.6`), dOctets(p.platform_instance_id)));
  return dSeq(...items);
}

// ---- keys and certificates ---------------------------------------------------------------------------

async function newKey(): Promise<TestKey> {
  const keys = (await webcrypto.subtle.generateKey(EC_GEN, true, ['sign', 'verify'])) as CryptoKeyPair;
  const spki = Buffer.from(await webcrypto.subtle.exportKey('raw', keys.publicKey));
  return { keys, private: KeyObject.from(keys.privateKey), public_raw: spki.subarray(1) };
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x3f) | 0x10; // positive, no leading zero
  return b.toString('hex');
}

async function makeCert(
  key: TestKey,
  subject: string,
  issuer: { name: string; key: TestKey } | 'self',
  ca: boolean,
  notBefore: Date,
  notAfter: Date,
  extra: x509.Extension[] = [],
): Promise<TestCert> {
  const s = serial();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(ca, ca ? 1 : undefined, true),
    new x509.KeyUsagesExtension(
      ca
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(key.keys.publicKey),
    ...extra,
  ];
  const signer = issuer === 'self' ? key : issuer.key;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: s,
    subject,
    issuer: issuer === 'self' ? subject : issuer.name,
    notBefore,
    notAfter,
    publicKey: key.keys.publicKey,
    signingKey: signer.keys.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions,
  });
  const der = Buffer.from(cert.rawData);
  return { ...key, cert, der, pem: derToPem(der), serial: s };
}

// ---- collateral ----------------------------------------------------------------------------------------

/** Intel's date format: ISO 8601 to the second, "Z". */
export function intelDate(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const svns = (v: number[]): { svn: number }[] => v.map((svn) => ({ svn }));
const pad16 = (v: number[]): number[] => [...v, ...new Array<number>(16 - v.length).fill(0)];

/** TCB levels in Intel's v3 TDX format, newest first. */
export interface TestTcbLevel {
  sgx: number[];
  pcesvn: number;
  tdx: number[];
  tcbDate: string;
  tcbStatus: string;
  advisoryIDs?: string[];
}

export interface TestIsvLevel {
  isvsvn: number;
  tcbDate: string;
  tcbStatus: string;
  advisoryIDs?: string[];
}

export type CrlKind = 'good' | 'wrong-key' | 'garbage' | 'other-ca';

export interface CollateralOptions {
  /** Which CA's PCK CRL to ship (default: 'platform', the CA of the default PCK). */
  pck_crl_ca?: 'platform' | 'processor';
  /** 'other-ca': the CRL of the PCK CA not named by pck_crl_ca; 'wrong-key': right issuer name, signed by an unrelated key. */
  pck_crl?: CrlKind;
  root_crl?: Exclude<CrlKind, 'other-ca'>;
  /** Serials (hex) to list on the PCK CRL / root CRL. */
  revoked_pck_serials?: string[];
  revoked_root_serials?: string[];
  /** Dates (ms). Defaults: issued 1 day before `now`, next update 29 days after. */
  tcb_issue_ms?: number;
  tcb_next_ms?: number;
  qe_issue_ms?: number;
  qe_next_ms?: number;
  crl_this_ms?: number;
  crl_next_ms?: number;
  fmspc?: string;
  tcb_levels?: TestTcbLevel[];
  qe_tcb_levels?: TestIsvLevel[];
  tdx_module_levels?: TestIsvLevel[];
  /** Sign the TCB info / QE identity with this key instead of the TCB signing key. */
  tcb_info_signer?: KeyObject;
  qe_identity_signer?: KeyObject;
  /** Change the signed TCB info text after signing (a tampered document). */
  tamper_tcb_info?: (json: string) => string;
}

export interface QeReportOptions {
  isvsvn?: number;
  isvprodid?: number;
  mrsigner?: Buffer;
  attributes?: Buffer;
  miscselect?: number;
  cpusvn?: Buffer;
}

export interface QuoteOptions {
  version?: 4 | 5;
  /** v5 only: 2 (TD 1.0) or 3 (TD 1.5). */
  body_type?: 2 | 3;
  tee_type?: number;
  attestation_key_type?: number;
  qe_vendor_id?: Buffer;
  mrtd?: Buffer;
  rtmr0?: Buffer;
  rtmr1?: Buffer;
  rtmr2?: Buffer;
  rtmr3?: Buffer;
  report_data?: Buffer;
  /** 8 bytes as in the quote; default SEPT_VE_DISABLE only (00 00 00 10 00 00 00 00). */
  td_attributes?: Buffer;
  xfam?: Buffer;
  tee_tcb_svn?: Buffer;
  mrseam?: Buffer;
  mrsignerseam?: Buffer;
  seam_attributes?: Buffer;
  mrservicetd?: Buffer;
  qe?: QeReportOptions;
  qe_auth_data?: Buffer;
  /** Which PCK certificate (and CA) the quote carries. */
  pck?: 'platform' | 'processor';
  /** Replace the PEM chain in the quote. */
  pck_chain_pem?: string;
  /** Sign the QE report with this key instead of the PCK key. */
  qe_report_signer?: KeyObject;
  /** Break the QE report's hash of the attestation key. */
  bad_qe_hash?: boolean;
  /** Sign the quote with this key instead of the attestation key. */
  quote_signer?: KeyObject;
  /** Zero bytes appended after the signature data (real quotes are padded). */
  padding?: number;
}

export interface RootOfTrustOptions {
  /** Reference time (ms): certificates and collateral are valid around it. Default: now. */
  now_ms?: number;
  fmspc?: string;
  /** SGX TCB components of the PCK certificates (default all UpToDate). */
  cpusvn?: number[];
  pcesvn?: number;
}

/** Defaults of the generated platform: what an UpToDate quote carries. */
export const TEST_PLATFORM = {
  fmspc: '30806F000000',
  cpusvn: [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
  pcesvn: 11,
  /** TEE_TCB_SVN of an UpToDate TD: module SVN 5, module version 1 (TDX_01), late microcode 2. */
  tee_tcb_svn: Buffer.from([5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  /** An OutOfDate TD: module SVN 3 (below TDX_01's UpToDate level 4), late microcode 1. */
  tee_tcb_svn_out_of_date: Buffer.from([3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  td_attributes: Buffer.from('0000001000000000', 'hex'),
  xfam: Buffer.from('e702060000000000', 'hex'),
  qe_isvsvn: 4,
  qe_isvprodid: 2,
  qe_attributes: Buffer.from('11000000000000000000000000000000', 'hex'),
} as const;

export class TestRootOfTrust {
  readonly now_ms: number;
  readonly root: TestCert;
  readonly platformCa: TestCert;
  readonly processorCa: TestCert;
  readonly tcbSigning: TestCert;
  readonly pckPlatform: TestCert;
  readonly pckProcessor: TestCert;
  /** The QE's attestation key (per platform, like a real QE). */
  readonly attestationKey: TestKey;
  /** An unrelated key, for "signed by the wrong key" cases. */
  readonly strayKey: TestKey;
  readonly fmspc: string;
  readonly ppid: Buffer;
  readonly qeMrsigner: Buffer;
  readonly mrseam: Buffer;
  readonly #qeSignatures = new Map<string, Buffer>();

  private constructor(init: {
    now_ms: number;
    root: TestCert;
    platformCa: TestCert;
    processorCa: TestCert;
    tcbSigning: TestCert;
    pckPlatform: TestCert;
    pckProcessor: TestCert;
    attestationKey: TestKey;
    strayKey: TestKey;
    fmspc: string;
    ppid: Buffer;
  }) {
    this.now_ms = init.now_ms;
    this.root = init.root;
    this.platformCa = init.platformCa;
    this.processorCa = init.processorCa;
    this.tcbSigning = init.tcbSigning;
    this.pckPlatform = init.pckPlatform;
    this.pckProcessor = init.pckProcessor;
    this.attestationKey = init.attestationKey;
    this.strayKey = init.strayKey;
    this.fmspc = init.fmspc;
    this.ppid = init.ppid;
    this.qeMrsigner = createHash('sha256').update('ee-test-qe-mrsigner').digest();
    this.mrseam = createHash('sha384').update('ee-test-mrseam').digest();
  }

  static async create(opts: RootOfTrustOptions = {}): Promise<TestRootOfTrust> {
    const now_ms = Math.floor((opts.now_ms ?? Date.now()) / 1000) * 1000;
    const from = new Date(now_ms - 365 * DAY);
    const to = new Date(now_ms + 5 * 365 * DAY);
    const rootKey = await newKey();
    const root = await makeCert(rootKey, TEST_NAMES.root, 'self', true, from, new Date(now_ms + 20 * 365 * DAY));
    const rootIssuer = { name: TEST_NAMES.root, key: rootKey };
    const platformCa = await makeCert(await newKey(), TEST_NAMES.platform, rootIssuer, true, from, to);
    const processorCa = await makeCert(await newKey(), TEST_NAMES.processor, rootIssuer, true, from, to);
    const tcbSigning = await makeCert(await newKey(), TEST_NAMES.tcbSigning, rootIssuer, false, from, to);
    const fmspc = (opts.fmspc ?? TEST_PLATFORM.fmspc).toUpperCase();
    const ppid = randomBytes(16);
    const ext = (platform: boolean): x509.Extension =>
      new x509.Extension(
        SGX,
        false,
        encodeSgxExtension({
          ppid,
          cpusvn: opts.cpusvn ?? [...TEST_PLATFORM.cpusvn],
          pcesvn: opts.pcesvn ?? TEST_PLATFORM.pcesvn,
          pce_id: Buffer.from('0000', 'hex'),
          fmspc: Buffer.from(fmspc, 'hex'),
          sgx_type: platform ? 1 : 0,
          ...(platform ? { platform_instance_id: randomBytes(16) } : {}),
        }),
      );
    const pckPlatform = await makeCert(
      await newKey(),
      TEST_NAMES.pck,
      { name: TEST_NAMES.platform, key: platformCa },
      false,
      from,
      to,
      [ext(true)],
    );
    const pckProcessor = await makeCert(
      await newKey(),
      TEST_NAMES.pck,
      { name: TEST_NAMES.processor, key: processorCa },
      false,
      from,
      to,
      [ext(false)],
    );
    return new TestRootOfTrust({
      now_ms,
      root,
      platformCa,
      processorCa,
      tcbSigning,
      pckPlatform,
      pckProcessor,
      attestationKey: await newKey(),
      strayKey: await newKey(),
      fmspc,
      ppid,
    });
  }

  get root_der(): Buffer {
    return this.root.der;
  }

  get now_s(): number {
    return Math.floor(this.now_ms / 1000);
  }

  /**
   * A PCK-like leaf with chosen SGX extension contents, issued by one of the PCK CAs (e.g. a malformed one),
   * or by any test certificate's key (e.g. a PCK leaf, to forge a longer chain).
   */
  async issuePck(
    ca: 'platform' | 'processor' | TestCert,
    ext: SgxExtensionParams | Buffer,
    leafKey?: TestKey,
  ): Promise<TestCert> {
    const issuer = ca === 'platform' ? this.platformCa : ca === 'processor' ? this.processorCa : ca;
    const value = Buffer.isBuffer(ext) ? ext : encodeSgxExtension(ext);
    return makeCert(
      leafKey ?? (await newKey()),
      TEST_NAMES.pck,
      { name: issuer.cert.subject, key: issuer },
      false,
      new Date(this.now_ms - 365 * DAY),
      new Date(this.now_ms + 5 * 365 * DAY),
      [new x509.Extension(SGX, false, value)],
    );
  }

  /** The PEM chain a quote carries: PCK leaf, its CA, the root. */
  pckChainPem(pck: 'platform' | 'processor' = 'platform', leaf?: TestCert): string {
    const l = leaf ?? (pck === 'platform' ? this.pckPlatform : this.pckProcessor);
    const ca = pck === 'platform' ? this.platformCa : this.processorCa;
    return l.pem + ca.pem + this.root.pem;
  }

  defaultTcbLevels(): TestTcbLevel[] {
    return [
      {
        sgx: [...TEST_PLATFORM.cpusvn],
        pcesvn: 11,
        tdx: pad16([5, 0, 2]),
        tcbDate: intelDate(this.now_ms - 10 * DAY),
        tcbStatus: 'UpToDate',
      },
      {
        sgx: [...TEST_PLATFORM.cpusvn],
        pcesvn: 5,
        tdx: pad16([2, 0, 1]),
        tcbDate: '2018-01-04T00:00:00Z',
        tcbStatus: 'OutOfDate',
        advisoryIDs: ['INTEL-SA-00106', 'INTEL-SA-00837'],
      },
    ];
  }

  defaultTdxModuleLevels(): TestIsvLevel[] {
    return [
      { isvsvn: 4, tcbDate: intelDate(this.now_ms - 10 * DAY), tcbStatus: 'UpToDate' },
      { isvsvn: 2, tcbDate: '2023-08-09T00:00:00Z', tcbStatus: 'OutOfDate' },
    ];
  }

  /** The TCB info document (object), before signing. */
  tcbInfo(opts: CollateralOptions = {}): Record<string, unknown> {
    const zeros48 = '0'.repeat(96);
    return {
      id: 'TDX',
      version: 3,
      issueDate: intelDate(opts.tcb_issue_ms ?? this.now_ms - DAY),
      nextUpdate: intelDate(opts.tcb_next_ms ?? this.now_ms + 29 * DAY),
      fmspc: (opts.fmspc ?? this.fmspc).toUpperCase(),
      pceId: '0000',
      tcbType: 0,
      tcbEvaluationDataNumber: 17,
      tdxModule: { mrsigner: zeros48, attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' },
      tdxModuleIdentities: [
        {
          id: 'TDX_01',
          mrsigner: zeros48,
          attributes: '0000000000000000',
          attributesMask: 'FFFFFFFFFFFFFFFF',
          tcbLevels: (opts.tdx_module_levels ?? this.defaultTdxModuleLevels()).map((l) => ({
            tcb: { isvsvn: l.isvsvn },
            tcbDate: l.tcbDate,
            tcbStatus: l.tcbStatus,
            ...(l.advisoryIDs !== undefined ? { advisoryIDs: l.advisoryIDs } : {}),
          })),
        },
      ],
      tcbLevels: (opts.tcb_levels ?? this.defaultTcbLevels()).map((l) => ({
        tcb: { sgxtcbcomponents: svns(l.sgx), pcesvn: l.pcesvn, tdxtcbcomponents: svns(l.tdx) },
        tcbDate: l.tcbDate,
        tcbStatus: l.tcbStatus,
        ...(l.advisoryIDs !== undefined ? { advisoryIDs: l.advisoryIDs } : {}),
      })),
    };
  }

  qeIdentity(opts: CollateralOptions = {}): Record<string, unknown> {
    return {
      id: 'TD_QE',
      version: 2,
      issueDate: intelDate(opts.qe_issue_ms ?? this.now_ms - DAY),
      nextUpdate: intelDate(opts.qe_next_ms ?? this.now_ms + 29 * DAY),
      tcbEvaluationDataNumber: 17,
      miscselect: '00000000',
      miscselectMask: 'FFFFFFFF',
      attributes: '11000000000000000000000000000000',
      attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
      mrsigner: this.qeMrsigner.toString('hex').toUpperCase(),
      isvprodid: TEST_PLATFORM.qe_isvprodid,
      tcbLevels: (
        opts.qe_tcb_levels ?? [{ isvsvn: 4, tcbDate: intelDate(this.now_ms - 10 * DAY), tcbStatus: 'UpToDate' }]
      ).map((l) => ({
        tcb: { isvsvn: l.isvsvn },
        tcbDate: l.tcbDate,
        tcbStatus: l.tcbStatus,
        ...(l.advisoryIDs !== undefined ? { advisoryIDs: l.advisoryIDs } : {}),
      })),
    };
  }

  /** A CRL issued by `issuer` (name), signed by `signer`. */
  async crl(issuer: TestCert, signer: TestKey, revoked: string[], this_ms: number, next_ms: number): Promise<Buffer> {
    const crl = await x509.X509CrlGenerator.create({
      issuer: issuer.cert.subjectName,
      thisUpdate: new Date(this_ms),
      nextUpdate: new Date(next_ms),
      entries: revoked.map((serialNumber) => ({
        serialNumber,
        revocationDate: new Date(this_ms),
        reason: x509.X509CrlReason.keyCompromise,
      })),
      signingKey: signer.keys.privateKey,
      signingAlgorithm: SIGN_ALG,
    });
    return Buffer.from(crl.rawData);
  }

  /** Signs a JSON document text the way Intel does: ECDSA P-256/SHA-256 over the exact bytes, r‖s. */
  static signJson(text: string, key: KeyObject): string {
    return cryptoSign('sha256', Buffer.from(text, 'utf8'), { key, dsaEncoding: 'ieee-p1363' }).toString('hex');
  }

  /** Collateral in dcap-qvl's getCollateral shape. */
  async collateral(opts: CollateralOptions = {}): Promise<DcapCollateral> {
    const thisMs = opts.crl_this_ms ?? this.now_ms - DAY;
    const nextMs = opts.crl_next_ms ?? this.now_ms + 29 * DAY;
    const caName = opts.pck_crl_ca ?? 'platform';
    const otherName = caName === 'platform' ? 'processor' : 'platform';
    const ca = (n: 'platform' | 'processor'): TestCert => (n === 'platform' ? this.platformCa : this.processorCa);

    const pckKind = opts.pck_crl ?? 'good';
    const crlCa = pckKind === 'other-ca' ? ca(otherName) : ca(caName);
    const pckRevoked = opts.revoked_pck_serials ?? [];
    let pckCrl: Buffer;
    if (pckKind === 'garbage') pckCrl = randomBytes(200);
    else pckCrl = await this.crl(crlCa, pckKind === 'wrong-key' ? this.strayKey : crlCa, pckRevoked, thisMs, nextMs);

    const rootKind = opts.root_crl ?? 'good';
    let rootCrl: Buffer;
    if (rootKind === 'garbage') rootCrl = randomBytes(120);
    else
      rootCrl = await this.crl(
        this.root,
        rootKind === 'wrong-key' ? this.strayKey : this.root,
        opts.revoked_root_serials ?? [],
        thisMs,
        nextMs,
      );

    const tcbText = JSON.stringify(this.tcbInfo(opts));
    const tcbSig = TestRootOfTrust.signJson(tcbText, opts.tcb_info_signer ?? this.tcbSigning.private);
    const qeText = JSON.stringify(this.qeIdentity(opts));
    const qeSig = TestRootOfTrust.signJson(qeText, opts.qe_identity_signer ?? this.tcbSigning.private);
    const signingChain = this.tcbSigning.pem + this.root.pem;
    return {
      pck_crl_issuer_chain: crlCa.pem + this.root.pem,
      root_ca_crl: rootCrl.toString('hex'),
      pck_crl: pckCrl.toString('hex'),
      tcb_info_issuer_chain: signingChain,
      tcb_info: opts.tamper_tcb_info !== undefined ? opts.tamper_tcb_info(tcbText) : tcbText,
      tcb_info_signature: tcbSig,
      qe_identity_issuer_chain: signingChain,
      qe_identity: qeText,
      qe_identity_signature: qeSig,
    };
  }

  /** The QE's SGX enclave report (384 bytes), binding the attestation key and QE auth data. */
  qeReport(opts: QeReportOptions, authData: Buffer, badHash = false): Buffer {
    const r = Buffer.alloc(384);
    (opts.cpusvn ?? Buffer.from(TEST_PLATFORM.cpusvn)).copy(r, 0);
    r.writeUInt32LE(opts.miscselect ?? 0, 16);
    (opts.attributes ?? TEST_PLATFORM.qe_attributes).copy(r, 48);
    createHash('sha256').update('ee-test-qe-mrenclave').digest().copy(r, 64);
    (opts.mrsigner ?? this.qeMrsigner).copy(r, 128);
    r.writeUInt16LE(opts.isvprodid ?? TEST_PLATFORM.qe_isvprodid, 256);
    r.writeUInt16LE(opts.isvsvn ?? TEST_PLATFORM.qe_isvsvn, 258);
    const hash = createHash('sha256').update(this.attestationKey.public_raw).update(authData).digest();
    if (badHash) hash[0] = (hash[0] as number) ^ 0xff;
    hash.copy(r, 320);
    return r;
  }

  /** A TDX quote (v4 by default) signed through this root of trust. */
  quote(opts: QuoteOptions = {}): Buffer {
    const version = opts.version ?? 4;
    const header = Buffer.alloc(48);
    header.writeUInt16LE(version, 0);
    header.writeUInt16LE(opts.attestation_key_type ?? 2, 2);
    header.writeUInt32LE(opts.tee_type ?? 0x81, 4);
    header.writeUInt16LE(TEST_PLATFORM.qe_isvsvn, 8);
    header.writeUInt16LE(TEST_PLATFORM.pcesvn, 10);
    (opts.qe_vendor_id ?? Buffer.from('939a7233f79c4ca9940a0db3957f0607', 'hex')).copy(header, 12);
    createHash('sha256').update('ee-test-qe-id').digest().subarray(0, 20).copy(header, 28);

    const bodyType = version === 5 ? (opts.body_type ?? 2) : 2;
    const fixed = (b: Buffer | undefined, len: number, fallback: Buffer): Buffer => {
      const v = b ?? fallback;
      if (v.length !== len) throw new Error(`test quote: field must be ${len} bytes`);
      return v;
    };
    const m48 = (label: string): Buffer => createHash('sha384').update(`ee-test-${label}`).digest();
    const parts = [
      fixed(opts.tee_tcb_svn, 16, TEST_PLATFORM.tee_tcb_svn),
      fixed(opts.mrseam, 48, this.mrseam),
      fixed(opts.mrsignerseam, 48, Buffer.alloc(48)),
      fixed(opts.seam_attributes, 8, Buffer.alloc(8)),
      fixed(opts.td_attributes, 8, TEST_PLATFORM.td_attributes),
      fixed(opts.xfam, 8, TEST_PLATFORM.xfam),
      fixed(opts.mrtd, 48, m48('mrtd')),
      Buffer.alloc(48), // MRCONFIGID
      Buffer.alloc(48), // MROWNER
      Buffer.alloc(48), // MROWNERCONFIG
      fixed(opts.rtmr0, 48, m48('rtmr0')),
      fixed(opts.rtmr1, 48, m48('rtmr1')),
      fixed(opts.rtmr2, 48, m48('rtmr2')),
      fixed(opts.rtmr3, 48, Buffer.alloc(48)),
      fixed(opts.report_data, 64, Buffer.alloc(64)),
    ];
    if (bodyType === 3) parts.push(Buffer.alloc(16), fixed(opts.mrservicetd, 48, Buffer.alloc(48)));
    const report = Buffer.concat(parts);
    const descriptor = Buffer.alloc(version === 5 ? 6 : 0);
    if (version === 5) {
      descriptor.writeUInt16LE(bodyType, 0);
      descriptor.writeUInt32LE(report.length, 2);
    }
    const signed = Buffer.concat([header, descriptor, report]);
    const signature = cryptoSign('sha256', signed, {
      key: opts.quote_signer ?? this.attestationKey.private,
      dsaEncoding: 'ieee-p1363',
    });

    const pck = opts.pck ?? 'platform';
    const pckCert = pck === 'platform' ? this.pckPlatform : this.pckProcessor;
    const authData = opts.qe_auth_data ?? createHash('sha256').update('ee-test-qe-auth').digest();
    const qeReport = this.qeReport(opts.qe ?? {}, authData, opts.bad_qe_hash === true);
    // A real QE report is signed once (by the PCE, at QE start-up) and reused by every quote: memoize, so
    // repeated quotes from this platform carry identical QE report signatures, as they do on hardware.
    const qeSigner = opts.qe_report_signer ?? pckCert.private;
    const memoKey = `${pck}:${opts.qe_report_signer === undefined ? 'pck' : 'custom'}:${qeReport.toString('hex')}`;
    let qeReportSig = opts.qe_report_signer === undefined ? this.#qeSignatures.get(memoKey) : undefined;
    if (qeReportSig === undefined) {
      qeReportSig = cryptoSign('sha256', qeReport, { key: qeSigner, dsaEncoding: 'ieee-p1363' });
      if (opts.qe_report_signer === undefined) this.#qeSignatures.set(memoKey, qeReportSig);
    }
    const chain = Buffer.concat([Buffer.from(opts.pck_chain_pem ?? this.pckChainPem(pck), 'latin1'), Buffer.from([0])]);

    const inner = Buffer.alloc(6);
    inner.writeUInt16LE(5, 0);
    inner.writeUInt32LE(chain.length, 2);
    const authLen = Buffer.alloc(2);
    authLen.writeUInt16LE(authData.length, 0);
    const certBody = Buffer.concat([qeReport, qeReportSig, authLen, authData, inner, chain]);
    const outer = Buffer.alloc(6);
    outer.writeUInt16LE(6, 0);
    outer.writeUInt32LE(certBody.length, 2);
    const sigData = Buffer.concat([signature, this.attestationKey.public_raw, outer, certBody]);
    const sigLen = Buffer.alloc(4);
    sigLen.writeUInt32LE(sigData.length, 0);
    return Buffer.concat([signed, sigLen, sigData, Buffer.alloc(opts.padding ?? 0)]);
  }
}
