// What the control plane's verifier (verifier.ts) is built from, read from its configuration at start-up: the
// DCAP root of trust, the collateral (a file, or a PCCS) and the attestation policy. A configuration problem
// throws ConfigError naming the variable; a missing policy file is not one (sealed networks fail closed).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import {
  INTEL_PCS_URL,
  INTEL_SGX_ROOT_CA_DER,
  normalizeCollateral,
  parsePolicy,
  PccsCollateralSource,
  StaticCollateralSource,
  type CollateralSource,
  type Policy,
} from '@easyenclave/attestation';
import { certificateDer, x509 } from '@easyenclave/attestation/x509';
import { ConfigError, type ControlPlaneConfig } from '../config.js';

export const NO_POLICY_REASON = 'no allowlist policy loaded';

export interface RootOfTrust {
  der: Buffer;
  /** False for a test root (EE_ATTEST_ROOT_CA_FILE with EE_ATTEST_ALLOW_NON_INTEL_ROOT=1). */
  intel: boolean;
}

/** The collateral in force, with the file text it came from ('' for a PCCS) to tell a changed file. */
export interface Collateral {
  text: string;
  value: CollateralSource;
}

export interface PolicyFile {
  /** Absolute. */
  path: string;
  /** Null while the file does not exist. */
  policy: Policy | null;
  text: string | null;
}

const sha256hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A DER or PEM file holding exactly one certificate, as DER. */
export function readCertificateFile(path: string): Buffer {
  return certificateDer(readFileSync(path));
}

/** Collateral from a DCAP collateral JSON file's text. */
export function collateralFromText(text: string): Collateral {
  return { text, value: new StaticCollateralSource(normalizeCollateral(JSON.parse(text))) };
}

export function parsePolicyText(text: string): Policy {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
  return parsePolicy(json);
}

/** Intel's SGX Root CA, or EE_ATTEST_ROOT_CA_FILE (refused unless it is Intel's or a non-Intel root is allowed). */
export function loadRootOfTrust(config: ControlPlaneConfig, log: Logger): RootOfTrust {
  if (config.attest_root_ca_file === undefined) return { der: INTEL_SGX_ROOT_CA_DER, intel: true };
  let der: Buffer;
  try {
    der = readCertificateFile(config.attest_root_ca_file);
  } catch (err) {
    throw new ConfigError(
      'EE_ATTEST_ROOT_CA_FILE',
      `EE_ATTEST_ROOT_CA_FILE must be a DER or PEM certificate file: ${config.attest_root_ca_file}: ${(err as Error).message}`,
    );
  }
  const intel = der.equals(INTEL_SGX_ROOT_CA_DER);
  if (!intel && !config.attest_allow_non_intel_root) {
    throw new ConfigError(
      'EE_ATTEST_ALLOW_NON_INTEL_ROOT',
      `EE_ATTEST_ALLOW_NON_INTEL_ROOT must be 1 to use EE_ATTEST_ROOT_CA_FILE=${config.attest_root_ca_file}: it is not Intel's SGX Root CA ` +
        "(only Intel's root proves real TDX hardware; a non-Intel root is for tests only)",
    );
  }
  if (!intel) {
    const cert = new x509.X509Certificate(der);
    log.warn(
      {
        root_ca_file: config.attest_root_ca_file,
        subject: cert.subject,
        sha256: sha256hex(der),
        EE_ATTEST_ALLOW_NON_INTEL_ROOT: '1',
      },
      "!!! ATTESTATION OVERRIDE: DCAP quotes are verified against a root CA that is NOT Intel's SGX Root CA. " +
        'TDX evidence accepted by this control plane proves nothing about real hardware. Tests only: never run production like this. !!!',
    );
  }
  return { der, intel };
}

/** Collateral: a file (offline) or a PCCS (Intel's PCS by default). Never from agents. */
export function loadCollateral(config: ControlPlaneConfig, log: Logger): Collateral {
  if (config.collateral_file === undefined) {
    const url = config.pccs_url ?? INTEL_PCS_URL;
    const value = new PccsCollateralSource({ url, logger: { warn: (m) => log.warn(m) } });
    log.info({ pccs_url: url }, 'DCAP collateral from a PCCS');
    return { text: '', value };
  }
  let collateral: Collateral;
  try {
    collateral = collateralFromText(readFileSync(config.collateral_file, 'utf8'));
  } catch (err) {
    throw new ConfigError(
      'EE_COLLATERAL_FILE',
      `EE_COLLATERAL_FILE must be a DCAP collateral JSON file: ${config.collateral_file}: ${(err as Error).message}`,
    );
  }
  log.info({ collateral_file: config.collateral_file }, 'DCAP collateral from a file (offline)');
  return collateral;
}

/** The policy of EE_ALLOWLIST_ASSET; a missing file is logged (sealed networks reject every agent until it exists). */
export function loadPolicyFile(config: ControlPlaneConfig, log: Logger): PolicyFile {
  const path = resolve(config.allowlist_asset);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError(
        'EE_ALLOWLIST_ASSET',
        `EE_ALLOWLIST_ASSET must be a readable attestation policy file: ${path}: ${(err as Error).message}`,
      );
    }
    log.warn(
      { policy_file: path },
      `${NO_POLICY_REASON}: ${path} does not exist, so sealed networks (forge-1) reject every agent; the sandbox network still works. ` +
        'Create the file (it is picked up when written) or set EE_ALLOWLIST_ASSET.',
    );
    return { path, policy: null, text: null };
  }
  let policy: Policy;
  try {
    policy = parsePolicyText(text);
  } catch (err) {
    throw new ConfigError(
      'EE_ALLOWLIST_ASSET',
      `EE_ALLOWLIST_ASSET must be a valid attestation policy: ${path}: ${(err as Error).message}`,
    );
  }
  log.info(
    { policy_file: path, policy_version: policy.version, releases: policy.measurements.length },
    'attestation policy loaded',
  );
  return { path, policy, text };
}
