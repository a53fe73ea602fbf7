// DCAP collateral: what a verifier needs beside the quote (Intel-signed TCB info and QE identity, the root
// and PCK CRLs, their issuer chains). It comes from a PCCS or Intel's PCS, fetched and cached by the control
// plane, or from a file for offline verification; never from the agent being verified (DESIGN §3).
//
// This module keeps the `@easyenclave/attestation/collateral` import path; the code lives in:
//   collateral-schema.ts          dcap-qvl's collateral shape and Intel's TCB info / QE identity schemas
//   collateral-normalize.ts       normalizeCollateral and the frozen Collateral
//   collateral-source.ts          CollateralSource, StaticCollateralSource, FileCollateralSource
//   pccs-collateral-source.ts     the PCCS / Intel PCS client and its cache
//   pccs-response.ts              decoding PCCS responses (rawJsonMembers, CRL bodies)
export type { Collateral, QvlCollateral } from './collateral-normalize.js';
export { collateralToJson, isCollateral, normalizeCollateral } from './collateral-normalize.js';
export type { DcapCollateral, IsvTcbLevel, QeIdentity, TcbInfo, TcbLevel } from './collateral-schema.js';
export { QeIdentitySchema, TcbInfoSchema } from './collateral-schema.js';
export type { CollateralSource } from './collateral-source.js';
export { FileCollateralSource, StaticCollateralSource } from './collateral-source.js';
export type { PccsCollateralSourceOptions, PccsLogger } from './pccs-collateral-source.js';
export { INTEL_PCS_URL, PccsCollateralSource } from './pccs-collateral-source.js';
export { rawJsonMembers } from './pccs-response.js';
