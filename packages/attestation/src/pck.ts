// The PCK (Provisioning Certification Key) certificate: the leaf of the chain in a quote. Intel puts the
// platform's identity and TCB in a private extension (OID 1.2.840.113741.1.13.1), a SEQUENCE of
// (OID, value) pairs:
//   .1 PPID (OCTET STRING 16)     .2 TCB: SEQUENCE of (.2.1…16 INTEGER component SVNs, .2.17 PCESVN, .2.18 CPUSVN)
//   .3 PCE-ID (OCTET STRING 2)    .4 FMSPC (OCTET STRING 6)    .5 SGX type (ENUMERATED)
//   .6 platform instance id, .7 configuration (Platform CA certificates only; read but not interpreted)
// The certificate is parsed with @peculiar/x509; the extension with our own DER walker (der.ts).
import { decodeOid, decodeUnsigned, derChildren, DER_TAG, expectTag, readDerExact } from './der.js';
import type { DerElement } from './der.js';
import { normalizeSerial, x509 } from './x509.js';

export const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';
export const SGX_OIDS = {
  ppid: `${SGX_EXTENSION_OID}.1`,
  tcb: `${SGX_EXTENSION_OID}.2`,
  pceId: `${SGX_EXTENSION_OID}.3`,
  fmspc: `${SGX_EXTENSION_OID}.4`,
  sgxType: `${SGX_EXTENSION_OID}.5`,
  platformInstanceId: `${SGX_EXTENSION_OID}.6`,
  configuration: `${SGX_EXTENSION_OID}.7`,
  pcesvn: `${SGX_EXTENSION_OID}.2.17`,
  cpusvn: `${SGX_EXTENSION_OID}.2.18`,
} as const;

export const PCK_PLATFORM_CA_CN = 'Intel SGX PCK Platform CA';
export const PCK_PROCESSOR_CA_CN = 'Intel SGX PCK Processor CA';

/** Which Intel CA issued a PCK certificate; also the `ca` parameter of the PCS/PCCS PCK CRL API. */
export type PckCa = 'platform' | 'processor';

export interface SgxExtension {
  ppid: Buffer;
  /** The 16 SGX TCB component SVNs (…1.13.1.2.1 – .16). */
  tcb_components: number[];
  pcesvn: number;
  /** CPUSVN (…1.13.1.2.18), 16 bytes; equal to tcb_components for Intel-issued certificates. */
  cpusvn: Buffer;
  pce_id: Buffer;
  fmspc: Buffer;
  /** 0 = Standard, 1 = Scalable, 2 = Scalable with integrity. */
  sgx_type: number;
  platform_instance_id?: Buffer;
}

export interface PckInfo extends SgxExtension {
  ca: PckCa;
  issuer_cn: string;
  /** Normalized lowercase hex serial. */
  serial: string;
  not_before: Date;
  not_after: Date;
}

function oidValuePairs(seq: DerElement, what: string): Map<string, DerElement> {
  expectTag(seq, DER_TAG.SEQUENCE, what);
  const out = new Map<string, DerElement>();
  for (const item of derChildren(seq)) {
    expectTag(item, DER_TAG.SEQUENCE, `${what} entry`);
    const kids = derChildren(item);
    if (kids.length !== 2) throw new Error(`${what}: entry must be (OID, value)`);
    const oid = decodeOid(expectTag(kids[0] as DerElement, DER_TAG.OID, `${what} entry OID`).value);
    if (out.has(oid)) throw new Error(`${what}: duplicate entry ${oid}`);
    out.set(oid, kids[1] as DerElement);
  }
  return out;
}

function required(map: Map<string, DerElement>, oid: string, name: string): DerElement {
  const el = map.get(oid);
  if (el === undefined) throw new Error(`SGX extension: ${name} (${oid}) is missing`);
  return el;
}

function octets(el: DerElement, len: number, name: string): Buffer {
  expectTag(el, DER_TAG.OCTET_STRING, name);
  if (el.value.length !== len) throw new Error(`SGX extension: ${name} must be ${len} bytes, got ${el.value.length}`);
  return Buffer.from(el.value);
}

/** Parses the DER value of the SGX extension (the contents of its extnValue OCTET STRING). */
export function parseSgxExtension(der: Buffer): SgxExtension {
  const top = oidValuePairs(readDerExact(der), 'SGX extension');
  const tcb = oidValuePairs(required(top, SGX_OIDS.tcb, 'TCB'), 'SGX TCB');
  const components: number[] = [];
  for (let i = 1; i <= 16; i++) {
    const el = required(tcb, `${SGX_OIDS.tcb}.${i}`, `TCB component ${i}`);
    const v = decodeUnsigned(expectTag(el, DER_TAG.INTEGER, `TCB component ${i}`).value);
    if (v > 255) throw new Error(`SGX extension: TCB component ${i} out of range`);
    components.push(v);
  }
  const pcesvn = decodeUnsigned(expectTag(required(tcb, SGX_OIDS.pcesvn, 'PCESVN'), DER_TAG.INTEGER, 'PCESVN').value);
  if (pcesvn > 0xffff) throw new Error('SGX extension: PCESVN out of range');
  const cpusvn = octets(required(tcb, SGX_OIDS.cpusvn, 'CPUSVN'), 16, 'CPUSVN');
  if (!cpusvn.equals(Buffer.from(components))) throw new Error('SGX extension: TCB components disagree with CPUSVN');
  const sgxType = decodeUnsigned(
    expectTag(required(top, SGX_OIDS.sgxType, 'SGX type'), DER_TAG.ENUMERATED, 'SGX type').value,
  );
  const ext: SgxExtension = {
    ppid: octets(required(top, SGX_OIDS.ppid, 'PPID'), 16, 'PPID'),
    tcb_components: components,
    pcesvn,
    cpusvn,
    pce_id: octets(required(top, SGX_OIDS.pceId, 'PCE-ID'), 2, 'PCE-ID'),
    fmspc: octets(required(top, SGX_OIDS.fmspc, 'FMSPC'), 6, 'FMSPC'),
    sgx_type: sgxType,
  };
  const pii = top.get(SGX_OIDS.platformInstanceId);
  if (pii !== undefined) ext.platform_instance_id = octets(pii, 16, 'platform instance id');
  return ext;
}

/** The CN of an X.509 name, or '' if it has none. */
export function commonName(name: x509.Name): string {
  const cns = name.getField('CN');
  return cns.length === 1 ? (cns[0] as string) : '';
}

export function caFromIssuerCn(cn: string): PckCa | undefined {
  if (cn === PCK_PLATFORM_CA_CN) return 'platform';
  if (cn === PCK_PROCESSOR_CA_CN) return 'processor';
  return undefined;
}

/** Parses a PCK leaf certificate: the SGX extension plus which Intel CA issued it. Throws on anything odd. */
export function parsePckCertificate(der: Buffer | x509.X509Certificate): PckInfo {
  const cert = der instanceof x509.X509Certificate ? der : new x509.X509Certificate(der);
  const exts = cert.extensions.filter((e) => e.type === SGX_EXTENSION_OID);
  if (exts.length !== 1)
    throw new Error(
      exts.length === 0 ? 'PCK certificate has no SGX extension' : 'PCK certificate has more than one SGX extension',
    );
  const ext = parseSgxExtension(Buffer.from((exts[0] as x509.Extension).value));
  const issuerCn = commonName(cert.issuerName);
  const ca = caFromIssuerCn(issuerCn);
  if (ca === undefined)
    throw new Error(
      `PCK certificate issuer "${issuerCn}" is neither "${PCK_PLATFORM_CA_CN}" nor "${PCK_PROCESSOR_CA_CN}"`,
    );
  return {
    ...ext,
    ca,
    issuer_cn: issuerCn,
    serial: normalizeSerial(cert.serialNumber),
    not_before: cert.notBefore,
    not_after: cert.notAfter,
  };
}
