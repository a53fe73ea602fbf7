// Our own PCK-chain and CRL checks, run beside dcap-qvl because dcap-qvl 0.3.9 only looks for serial numbers
// in whatever CRL bytes it is handed: it never verifies a CRL's signature or issuer, never checks thisUpdate/
// nextUpdate, silently skips a CRL it cannot parse, and checks every certificate against both CRLs instead of
// the PCK CRL of the CA that actually issued the PCK certificate. Here (with @peculiar/x509):
//   - the PCK chain in the quote is exactly PCK leaf → Intel SGX PCK Platform/Processor CA → the trusted root,
//     names chain, the middle certificate is a CA;
//   - the root CA CRL is issued by the trusted root and its signature verifies with the root's key;
//   - the PCK CRL is issued by the CA that issued the PCK certificate (not the other PCK CA) and its
//     signature verifies with that CA's key;
//   - thisUpdate ≤ now < nextUpdate for both (nextUpdate is required);
//   - the PCK certificate's serial is not on the PCK CRL; the PCK CA's and the TCB signing certificates'
//     serials are not on the root CA CRL.
// The result is split into a time-independent part (cacheable per platform and collateral) and the date
// checks, evaluated on every call.
import type { Collateral } from './collateral-normalize.js';
import { caFromIssuerCn, commonName, PCK_PLATFORM_CA_CN, PCK_PROCESSOR_CA_CN } from './pck.js';
import { normalizeSerial, splitPemChain, x509 } from './x509.js';

export const CRL_REASONS = {
  chainLength: (n: number) =>
    `PCK certificate chain must be PCK certificate, PCK CA, root CA (3 certificates), got ${n}`,
  chainRoot: 'PCK certificate chain does not end at the trusted root CA',
  chainNames: 'PCK certificate chain issuer and subject names do not chain',
  notPckCa: `PCK CA certificate is neither "${PCK_PLATFORM_CA_CN}" nor "${PCK_PROCESSOR_CA_CN}" (or is not a CA)`,
  rootCrlMalformed: (msg: string) => `root CA CRL is malformed: ${msg}`,
  rootCrlIssuer: (got: string) => `root CA CRL is not issued by the trusted root CA (issuer "${got}")`,
  rootCrlSignature: 'root CA CRL signature does not verify with the root CA key',
  pckCrlMalformed: (msg: string) => `PCK CRL is malformed: ${msg}`,
  pckCrlWrongCa: (crlIssuer: string, pckIssuer: string) =>
    `PCK CRL is from the wrong CA: issued by "${crlIssuer}", but the PCK certificate was issued by "${pckIssuer}"`,
  pckCrlSignature: 'PCK CRL signature does not verify with the key of the CA that issued the PCK certificate',
  pckCrlIssuerChain: 'PCK CRL issuer chain does not name the CA that issued the PCK certificate',
  noNextUpdate: (which: string) => `${which} has no nextUpdate`,
  notYetValid: (which: string, thisUpdate: string) => `${which} is not yet valid (thisUpdate ${thisUpdate})`,
  expired: (which: string, nextUpdate: string) => `${which} has expired (nextUpdate ${nextUpdate})`,
  pckRevoked: (serial: string) => `PCK certificate (serial ${serial}) is revoked`,
  pckCaRevoked: (serial: string) => `PCK CA certificate (serial ${serial}) is revoked by the root CA CRL`,
  signingRevoked: (serial: string) => `TCB signing certificate (serial ${serial}) is revoked by the root CA CRL`,
  issuerChainMalformed: (which: string, msg: string) => `${which} is malformed: ${msg}`,
} as const;

export interface CrlDates {
  which: 'root CA CRL' | 'PCK CRL';
  this_update_ms: number;
  next_update_ms: number | null;
}

export interface RevocationCheck {
  /** Problems that do not depend on the verification time. */
  reasons: string[];
  crls: CrlDates[];
}

const nameDer = (n: x509.Name): Buffer => Buffer.from(n.toArrayBuffer());

function parseCrl(der: Buffer): x509.X509Crl {
  if (der.length === 0) throw new Error('empty');
  if (der[0] !== 0x30) throw new Error('not DER');
  return new x509.X509Crl(der);
}

function parseChain(pem: string): x509.X509Certificate[] {
  return splitPemChain(pem).map((d) => new x509.X509Certificate(d));
}

function revokedSerials(crl: x509.X509Crl): Set<string> {
  return new Set(crl.entries.map((e) => normalizeSerial(e.serialNumber)));
}

async function verifies(crl: x509.X509Crl, cert: x509.X509Certificate): Promise<boolean> {
  try {
    return await crl.verify({ publicKey: cert });
  } catch {
    return false;
  }
}

/** The time-independent checks. `chainDer` is the PCK chain from the quote, leaf first. */
export async function checkRevocation(
  rootDer: Buffer,
  chainDer: Buffer[],
  collateral: Collateral,
): Promise<RevocationCheck> {
  const reasons: string[] = [];
  const crls: CrlDates[] = [];
  const root = new x509.X509Certificate(rootDer);
  const rootSubject = nameDer(root.subjectName);

  // The PCK chain's shape (dcap-qvl verifies only the signatures along it).
  const chain = chainDer.map((d) => new x509.X509Certificate(d));
  const leaf = chain[0];
  const pckCa = chain.length >= 2 ? chain[1] : undefined;
  if (chain.length !== 3) reasons.push(CRL_REASONS.chainLength(chain.length));
  if (chain.length > 0 && !(chainDer[chainDer.length - 1] as Buffer).equals(rootDer))
    reasons.push(CRL_REASONS.chainRoot);
  if (leaf !== undefined && pckCa !== undefined) {
    if (
      !nameDer(leaf.issuerName).equals(nameDer(pckCa.subjectName)) ||
      !nameDer(pckCa.issuerName).equals(rootSubject)
    ) {
      reasons.push(CRL_REASONS.chainNames);
    }
    const bc = pckCa.getExtension(x509.BasicConstraintsExtension);
    if (bc === null || !bc.ca || caFromIssuerCn(commonName(pckCa.subjectName)) === undefined)
      reasons.push(CRL_REASONS.notPckCa);
  }

  // Root CA CRL.
  let rootCrl: x509.X509Crl | undefined;
  try {
    rootCrl = parseCrl(collateral.root_ca_crl);
  } catch (err) {
    reasons.push(CRL_REASONS.rootCrlMalformed((err as Error).message));
  }
  if (rootCrl !== undefined) {
    let ok = true;
    if (!nameDer(rootCrl.issuerName).equals(rootSubject)) {
      reasons.push(CRL_REASONS.rootCrlIssuer(rootCrl.issuer));
      ok = false;
    } else if (!(await verifies(rootCrl, root))) {
      reasons.push(CRL_REASONS.rootCrlSignature);
      ok = false;
    }
    crls.push({
      which: 'root CA CRL',
      this_update_ms: rootCrl.thisUpdate.getTime(),
      next_update_ms: rootCrl.nextUpdate?.getTime() ?? null,
    });
    if (ok) {
      const revoked = revokedSerials(rootCrl);
      if (pckCa !== undefined && revoked.has(normalizeSerial(pckCa.serialNumber)))
        reasons.push(CRL_REASONS.pckCaRevoked(normalizeSerial(pckCa.serialNumber)));
      const signers = new Map<string, true>();
      for (const [which, pem] of [
        ['TCB info issuer chain', collateral.tcb_info_issuer_chain],
        ['QE identity issuer chain', collateral.qe_identity_issuer_chain],
        ['PCK CRL issuer chain', collateral.pck_crl_issuer_chain],
      ] as const) {
        try {
          const first = parseChain(pem)[0] as x509.X509Certificate;
          if (which !== 'PCK CRL issuer chain') signers.set(normalizeSerial(first.serialNumber), true);
        } catch (err) {
          reasons.push(CRL_REASONS.issuerChainMalformed(which, (err as Error).message));
        }
      }
      for (const serial of signers.keys()) if (revoked.has(serial)) reasons.push(CRL_REASONS.signingRevoked(serial));
    }
  }

  // PCK CRL: must be the one of the CA that issued the PCK certificate.
  let pckCrl: x509.X509Crl | undefined;
  try {
    pckCrl = parseCrl(collateral.pck_crl);
  } catch (err) {
    reasons.push(CRL_REASONS.pckCrlMalformed((err as Error).message));
  }
  if (pckCrl !== undefined && leaf !== undefined && pckCa !== undefined) {
    let ok = true;
    if (
      !nameDer(pckCrl.issuerName).equals(nameDer(leaf.issuerName)) ||
      !nameDer(pckCrl.issuerName).equals(nameDer(pckCa.subjectName))
    ) {
      reasons.push(
        CRL_REASONS.pckCrlWrongCa(
          commonName(pckCrl.issuerName) || pckCrl.issuer,
          commonName(leaf.issuerName) || leaf.issuer,
        ),
      );
      ok = false;
    } else if (!(await verifies(pckCrl, pckCa))) {
      reasons.push(CRL_REASONS.pckCrlSignature);
      ok = false;
    }
    crls.push({
      which: 'PCK CRL',
      this_update_ms: pckCrl.thisUpdate.getTime(),
      next_update_ms: pckCrl.nextUpdate?.getTime() ?? null,
    });
    if (ok) {
      const serial = normalizeSerial(leaf.serialNumber);
      if (revokedSerials(pckCrl).has(serial)) reasons.push(CRL_REASONS.pckRevoked(serial));
      try {
        const issuerChainCa = parseChain(collateral.pck_crl_issuer_chain)[0] as x509.X509Certificate;
        if (
          !nameDer(issuerChainCa.subjectName).equals(nameDer(pckCa.subjectName)) ||
          !Buffer.from(issuerChainCa.publicKey.rawData).equals(Buffer.from(pckCa.publicKey.rawData))
        ) {
          reasons.push(CRL_REASONS.pckCrlIssuerChain);
        }
      } catch {
        // already reported above as a malformed issuer chain
      }
    }
  }
  return { reasons, crls };
}

/** The date checks, per call: thisUpdate ≤ now < nextUpdate. */
export function crlTimeReasons(check: RevocationCheck, now_ms: number): string[] {
  const reasons: string[] = [];
  for (const c of check.crls) {
    if (c.next_update_ms === null) {
      reasons.push(CRL_REASONS.noNextUpdate(c.which));
      continue;
    }
    if (now_ms < c.this_update_ms)
      reasons.push(CRL_REASONS.notYetValid(c.which, new Date(c.this_update_ms).toISOString()));
    if (now_ms >= c.next_update_ms)
      reasons.push(CRL_REASONS.expired(c.which, new Date(c.next_update_ms).toISOString()));
  }
  return reasons;
}
