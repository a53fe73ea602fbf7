// Where a verifier gets collateral, and the two fixed sources: in memory, or a file for offline verification.
// The PCCS client is in pccs-collateral-source.ts.
import { readFileSync } from 'node:fs';
import { normalizeCollateral } from './collateral-normalize.js';
import type { Collateral } from './collateral-normalize.js';
import type { DcapCollateral } from './collateral-schema.js';
import type { PckCa } from './pck.js';

/** Where a verifier gets collateral for a platform: its FMSPC (12 hex chars, upper case) and PCK CA. */
export interface CollateralSource {
  get(fmspc: string, ca: PckCa): Promise<Collateral>;
}

export function checkFmspc(fmspc: string): string {
  if (typeof fmspc !== 'string' || !/^[0-9a-fA-F]{12}$/.test(fmspc)) throw new Error(`invalid FMSPC "${fmspc}"`);
  return fmspc.toUpperCase();
}

export function checkCa(ca: string): PckCa {
  if (ca !== 'platform' && ca !== 'processor') throw new Error(`invalid PCK CA "${ca}"`);
  return ca;
}

/** Fixed, in-memory collateral (tests, or a caller that fetched it itself). Checks only the FMSPC. */
export class StaticCollateralSource implements CollateralSource {
  readonly collateral: Collateral;
  constructor(collateral: DcapCollateral | Collateral) {
    this.collateral = normalizeCollateral(collateral);
  }
  async get(fmspc: string, ca: PckCa): Promise<Collateral> {
    const want = checkFmspc(fmspc);
    checkCa(ca);
    const have = this.collateral.tcb_info_parsed.fmspc.toUpperCase();
    if (have !== want) throw new Error(`collateral is for FMSPC ${have}, the quote's platform is ${want}`);
    return this.collateral;
  }
}

/** Offline collateral from a JSON file in dcap-qvl's getCollateral shape, read and validated once. */
export class FileCollateralSource extends StaticCollateralSource {
  readonly path: string;
  constructor(path: string) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read collateral file ${path}: ${(err as Error).message}`);
    }
    super(normalizeCollateral(json));
    this.path = path;
  }
}
