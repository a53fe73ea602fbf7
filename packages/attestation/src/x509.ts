// The one place @peculiar/x509 is imported. It depends on tsyringe, which needs the Reflect metadata API
// installed before it loads; ES modules evaluate their imports in order, so the polyfill comes first here
// and every other module imports x509 from this file, never from the package directly.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export { x509 };

const PEM_CERT = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Splits a PEM certificate chain into DER certificates, strictly: only CERTIFICATE blocks separated by
 * whitespace, optionally followed by NUL padding (real quotes end their chain with one NUL byte). Anything
 * else (text between blocks, bad base64, no certificate at all) throws.
 */
export function splitPemChain(pem: Buffer | string): Buffer[] {
  let text = typeof pem === 'string' ? pem : pem.toString('latin1');
  text = text.replace(/\0+$/, '');
  const certs: Buffer[] = [];
  let last = 0;
  for (const m of text.matchAll(PEM_CERT)) {
    if (text.slice(last, m.index).trim() !== '') throw new Error('unexpected data between PEM certificates');
    const b64 = (m[1] as string).replace(/[\r\n]/g, '');
    if (!BASE64.test(b64) || b64.length % 4 !== 0) throw new Error('invalid base64 in PEM certificate');
    certs.push(Buffer.from(b64, 'base64'));
    last = (m.index as number) + m[0].length;
  }
  if (text.slice(last).trim() !== '') throw new Error('unexpected data after the last PEM certificate');
  if (certs.length === 0) throw new Error('no PEM certificate found');
  return certs;
}

export function derToPem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Lowercase hex serial without leading zero bytes, so serials from certificates and CRLs compare equal. */
export function normalizeSerial(hex: string): string {
  const s = hex.toLowerCase().replace(/^(00)+/, '');
  return s === '' ? '00' : s;
}

/**
 * One certificate as DER, from a file's bytes in DER or PEM (exactly one CERTIFICATE block). Throws when the
 * bytes are not exactly one parseable certificate. Used for a root CA given in configuration.
 */
export function certificateDer(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  let der: Buffer;
  if (text.includes('-----BEGIN')) {
    const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g)];
    if (blocks.length !== 1) throw new Error(`expected exactly one PEM certificate, found ${blocks.length}`);
    der = Buffer.from((blocks[0]![1] as string).replace(/\s/g, ''), 'base64');
  } else {
    der = raw;
  }
  new x509.X509Certificate(der); // throws if it is not a certificate
  return der;
}
