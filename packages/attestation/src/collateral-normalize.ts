// Normalized collateral. `normalizeCollateral` validates dcap-qvl's shape into a frozen `Collateral` with
// decoded bytes, the parsed JSON documents and a digest, computed once and reused by the verifier's caches.
import { createHash } from 'node:crypto';
import { DcapCollateralSchema, parseDoc, QeIdentitySchema, TcbInfoSchema } from './collateral-schema.js';
import type { DcapCollateral, QeIdentity, TcbInfo } from './collateral-schema.js';

/** What dcap-qvl's verify() receives: hex strings, and never a PCK chain (so it uses the quote's). */
export interface QvlCollateral {
  pck_crl_issuer_chain: string;
  root_ca_crl: string;
  pck_crl: string;
  tcb_info_issuer_chain: string;
  tcb_info: string;
  tcb_info_signature: string;
  qe_identity_issuer_chain: string;
  qe_identity: string;
  qe_identity_signature: string;
}

const NORMALIZED = Symbol('ee.collateral');

/** Validated, immutable collateral. Build with normalizeCollateral. */
export interface Collateral {
  readonly [NORMALIZED]: true;
  readonly pck_crl_issuer_chain: string;
  readonly root_ca_crl: Buffer;
  readonly pck_crl: Buffer;
  readonly tcb_info_issuer_chain: string;
  /** The exact JSON text Intel signed. */
  readonly tcb_info: string;
  readonly tcb_info_signature: Buffer;
  readonly qe_identity_issuer_chain: string;
  readonly qe_identity: string;
  readonly qe_identity_signature: Buffer;
  readonly tcb_info_parsed: TcbInfo;
  readonly qe_identity_parsed: QeIdentity;
  /** Hex SHA-256 over every field, length-prefixed, in a fixed order. */
  readonly digest: string;
  readonly qvl: QvlCollateral;
}

export function isCollateral(value: unknown): value is Collateral {
  return typeof value === 'object' && value !== null && (value as { [NORMALIZED]?: unknown })[NORMALIZED] === true;
}

const toBytes = (v: string | number[] | Uint8Array): Buffer =>
  typeof v === 'string' ? Buffer.from(v, 'hex') : Buffer.from(v);

/** Validates collateral (dcap-qvl shape, or already normalized) into a frozen Collateral. Throws on bad input. */
export function normalizeCollateral(input: DcapCollateral | Collateral | unknown): Collateral {
  if (isCollateral(input)) return input;
  const r = DcapCollateralSchema.safeParse(input);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(
      `collateral is malformed: ${i === undefined ? 'invalid' : `${i.path.join('.') || '(root)'}: ${i.message}`}`,
    );
  }
  const c = r.data;
  const fields = {
    pck_crl_issuer_chain: c.pck_crl_issuer_chain,
    root_ca_crl: toBytes(c.root_ca_crl),
    pck_crl: toBytes(c.pck_crl),
    tcb_info_issuer_chain: c.tcb_info_issuer_chain,
    tcb_info: c.tcb_info,
    tcb_info_signature: toBytes(c.tcb_info_signature),
    qe_identity_issuer_chain: c.qe_identity_issuer_chain,
    qe_identity: c.qe_identity,
    qe_identity_signature: toBytes(c.qe_identity_signature),
  };
  const h = createHash('sha256').update('ee-collateral-v1');
  for (const [name, value] of Object.entries(fields)) {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(name).update(len).update(bytes);
  }
  const out: Collateral = {
    [NORMALIZED]: true,
    ...fields,
    tcb_info_parsed: parseDoc(TcbInfoSchema, c.tcb_info, 'tcb_info'),
    qe_identity_parsed: parseDoc(QeIdentitySchema, c.qe_identity, 'qe_identity'),
    digest: h.digest('hex'),
    qvl: Object.freeze({
      pck_crl_issuer_chain: fields.pck_crl_issuer_chain,
      root_ca_crl: fields.root_ca_crl.toString('hex'),
      pck_crl: fields.pck_crl.toString('hex'),
      tcb_info_issuer_chain: fields.tcb_info_issuer_chain,
      tcb_info: fields.tcb_info,
      tcb_info_signature: fields.tcb_info_signature.toString('hex'),
      qe_identity_issuer_chain: fields.qe_identity_issuer_chain,
      qe_identity: fields.qe_identity,
      qe_identity_signature: fields.qe_identity_signature.toString('hex'),
    }),
  };
  return Object.freeze(out);
}

/** Back to dcap-qvl's JSON shape (hex strings), e.g. to write a collateral file. */
export function collateralToJson(c: Collateral): DcapCollateral {
  return { ...c.qvl };
}
