// The shapes of DCAP collateral: dcap-qvl's wire/on-disk shape and Intel's signed TCB info and QE identity
// documents, validated with zod. Only the fields the verifier uses are typed.
import { z } from 'zod';

/** dcap-qvl 0.3.9's collateral shape (bytes as hex strings or arrays of numbers). */
export interface DcapCollateral {
  pck_crl_issuer_chain: string;
  root_ca_crl: string | number[] | Uint8Array;
  pck_crl: string | number[] | Uint8Array;
  tcb_info_issuer_chain: string;
  tcb_info: string;
  tcb_info_signature: string | number[] | Uint8Array;
  qe_identity_issuer_chain: string;
  qe_identity: string;
  qe_identity_signature: string | number[] | Uint8Array;
  /** Accepted for compatibility and ignored: the PCK chain is always taken from the quote. */
  pck_certificate_chain?: string | null;
}

const isoDate = z.string().refine((s) => Number.isFinite(Date.parse(s)), 'must be an ISO date');
const hexN = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`), `must be ${bytes * 2} hex characters`);
const svn = z.object({ svn: z.number().int().min(0).max(255) });
const status = z.string().min(1);

const tcbLevel = z.object({
  tcb: z.object({
    sgxtcbcomponents: z.array(svn).length(16),
    pcesvn: z.number().int().min(0).max(0xffff),
    tdxtcbcomponents: z.array(svn).length(16).optional(),
  }),
  tcbDate: isoDate,
  tcbStatus: status,
  advisoryIDs: z.array(z.string()).optional(),
});
const isvLevel = z.object({
  tcb: z.object({ isvsvn: z.number().int().min(0).max(0xffff) }),
  tcbDate: isoDate,
  tcbStatus: status,
  advisoryIDs: z.array(z.string()).optional(),
});

/** Intel TCB info, v3 (TDX). Not strict: Intel may add fields; only the ones we use are typed. */
export const TcbInfoSchema = z.object({
  id: z.string(),
  version: z.number().int(),
  issueDate: isoDate,
  nextUpdate: isoDate,
  fmspc: hexN(6),
  pceId: hexN(2),
  tcbType: z.number().int(),
  tcbEvaluationDataNumber: z.number().int(),
  tdxModule: z.object({ mrsigner: hexN(48), attributes: hexN(8), attributesMask: hexN(8) }).optional(),
  tdxModuleIdentities: z
    .array(
      z.object({
        id: z.string(),
        mrsigner: hexN(48),
        attributes: hexN(8),
        attributesMask: hexN(8),
        tcbLevels: z.array(isvLevel).min(1),
      }),
    )
    .optional(),
  tcbLevels: z.array(tcbLevel).min(1),
});
export type TcbInfo = z.output<typeof TcbInfoSchema>;
export type TcbLevel = TcbInfo['tcbLevels'][number];

export const QeIdentitySchema = z.object({
  id: z.string(),
  version: z.number().int(),
  issueDate: isoDate,
  nextUpdate: isoDate,
  tcbEvaluationDataNumber: z.number().int(),
  miscselect: hexN(4),
  miscselectMask: hexN(4),
  attributes: hexN(16),
  attributesMask: hexN(16),
  mrsigner: hexN(32),
  isvprodid: z.number().int(),
  tcbLevels: z.array(isvLevel).min(1),
});
export type QeIdentity = z.output<typeof QeIdentitySchema>;
export type IsvTcbLevel = QeIdentity['tcbLevels'][number];

const bytesLike = z.union([
  z.string().regex(/^(?:[0-9a-fA-F]{2})*$/, 'must be hex'),
  z.array(z.number().int().min(0).max(255)),
  z.instanceof(Uint8Array),
]);
const pem = z.string().min(1);

export const DcapCollateralSchema = z.strictObject({
  pck_crl_issuer_chain: pem,
  root_ca_crl: bytesLike,
  pck_crl: bytesLike,
  tcb_info_issuer_chain: pem,
  tcb_info: z.string().min(2),
  tcb_info_signature: bytesLike,
  qe_identity_issuer_chain: pem,
  qe_identity: z.string().min(2),
  qe_identity_signature: bytesLike,
  pck_certificate_chain: z.string().nullable().optional(),
});

/** Parses one of Intel's signed JSON documents (TCB info, QE identity); throws with the first schema issue. */
export function parseDoc<T>(schema: z.ZodType<T>, text: string, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`collateral ${what} is not valid JSON`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(
      `collateral ${what} is malformed: ${i === undefined ? 'invalid' : `${i.path.join('.')}: ${i.message}`}`,
    );
  }
  return r.data;
}
