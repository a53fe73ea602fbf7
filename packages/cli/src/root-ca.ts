// The testing-only --root-ca override shared by `ee quote verify` and `ee attestation verify`: read the DER or
// PEM certificate, and say loudly when it is not Intel's SGX Root CA (a quote that verifies against another
// root proves nothing about real TDX hardware).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { certificateDer, INTEL_SGX_ROOT_CA_DER, type DcapLogger } from '@easyenclave/attestation';
import { usageError } from './errors.js';

export interface RootOverride {
  der: Buffer;
  intel: boolean;
  /** The options verifyQuote / DcapVerifier take for it. */
  verifier_options: { root_ca_der: Buffer; allow_non_intel_root: true; logger: DcapLogger };
}

const stderrLogger: DcapLogger = { warn: (m: string) => void process.stderr.write(`ee: ${m}\n`) };

/** undefined without --root-ca; a usage error (exit 2) when the file is not one certificate. */
export function readRootOverride(path: string | undefined): RootOverride | undefined {
  if (path === undefined) return undefined;
  let der: Buffer;
  try {
    der = certificateDer(readFileSync(path));
  } catch (err) {
    throw usageError(`cannot use root CA file ${path}: ${(err as Error).message}`);
  }
  const intel = der.equals(INTEL_SGX_ROOT_CA_DER);
  if (!intel) {
    process.stderr.write(
      `ee: WARNING: --root-ca ${path} is NOT Intel's SGX Root CA (sha256 ${createHash('sha256').update(der).digest('hex')}).\n` +
        'ee: WARNING: a quote that verifies against it proves nothing about real TDX hardware. --root-ca is for testing only.\n',
    );
  }
  return { der, intel, verifier_options: { root_ca_der: der, allow_non_intel_root: true, logger: stderrLogger } };
}
