// Every reason a DCAP verification can fail with. Tests and operators match on these strings.
export const DCAP_REASONS = {
  reportData: 'report_data does not match the nonce and keyset',
  quoteSignature: 'quote signature does not verify with the attestation key',
  attestationKey: 'attestation key is not a valid P-256 public key',
  dcap: (msg: string) => `DCAP verification failed: ${msg}`,
  parserDisagreement: 'our quote parser and dcap-qvl disagree on the TD report',
  statusDisagreement: (ours: string, qvl: string) =>
    `TCB status computed here (${ours}) disagrees with dcap-qvl (${qvl})`,
  noTcbLevel: 'no TCB level in the TCB info matches the platform',
  noQeLevel: 'QE ISVSVN is below every TCB level of the QE identity',
  tdxModuleMissing: (id: string) => `TDX module identity ${id} is not in the TCB info`,
  tdxModuleSigner: 'MRSIGNERSEAM does not match the TDX module identity in the TCB info',
  tdxModuleAttributes: 'SEAM attributes do not match the TDX module identity in the TCB info',
  tdxModuleSvn: 'TDX module SVN is below every TCB level of its module identity',
  tdxModuleRevoked: 'TDX module TCB level is Revoked',
  pck: (msg: string) => `PCK certificate: ${msg}`,
  collateral: (msg: string) => `collateral unavailable: ${msg}`,
  nonIntelRoot: "refusing a DCAP root CA that is not Intel's SGX Root CA (set allow_non_intel_root, in tests only)",
} as const;
