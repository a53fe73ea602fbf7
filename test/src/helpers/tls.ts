// A private certificate authority made per test run (@peculiar/x509 on WebCrypto, ECDSA P-256): a CA and one
// server certificate for the names given, written as PEM files a control plane, nginx or Caddy can load, and
// that clients trust through NODE_EXTRA_CA_CERTS (Node) or the CA file (curl-like tools).
import { webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { tmpDir } from './tmp.js';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface TestPki {
  ca_file: string;
  cert_file: string;
  key_file: string;
  ca_pem: string;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`;
}

/** A CA and a server certificate for `names` (DNS names, `*.` wildcards, or IP addresses). */
export async function makeTestPki(names: string[]): Promise<TestPki> {
  const dir = tmpDir('ee-pki-');
  const now = Date.now();
  const caKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=easyenclave test CA',
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + DAY_MS),
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const isIp = (n: string) => /^[0-9.]+$/.test(n) || n.includes(':');
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: `CN=${names[0]}`,
    issuer: ca.subject,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + DAY_MS),
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((n) => (isIp(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n })),
      ),
    ],
  });
  const ca_pem = ca.toString('pem') + '\n';
  const pki: TestPki = {
    ca_file: join(dir, 'ca.pem'),
    cert_file: join(dir, 'server.pem'),
    key_file: join(dir, 'server.key'),
    ca_pem,
  };
  writeFileSync(pki.ca_file, ca_pem);
  writeFileSync(pki.cert_file, leaf.toString('pem') + '\n' + ca_pem);
  writeFileSync(pki.key_file, pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), {
    mode: 0o600,
  });
  return pki;
}
