// DCAP collateral: what a verifier needs beside the quote (Intel-signed TCB info and QE identity, the root
// and PCK CRLs, their issuer chains). It comes from a PCCS or Intel's PCS, fetched and cached by the control
// plane, or from a file for offline verification; never from the agent being verified (DESIGN §3).
//
// The on-disk/wire shape is dcap-qvl's `getCollateral` result. `normalizeCollateral` validates it into a
// frozen `Collateral` with decoded bytes, the parsed JSON documents and a digest, computed once and reused
// by the verifier's caches.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { PckCa } from './pck.js';
import { splitPemChain, x509 } from './x509.js';

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
const hexN = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`), `must be ${bytes * 2} hex characters`);
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
    .array(z.object({ id: z.string(), mrsigner: hexN(48), attributes: hexN(8), attributesMask: hexN(8), tcbLevels: z.array(isvLevel).min(1) }))
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

const DcapCollateralSchema = z.strictObject({
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

const toBytes = (v: string | number[] | Uint8Array): Buffer => (typeof v === 'string' ? Buffer.from(v, 'hex') : Buffer.from(v));

function parseDoc<T>(schema: z.ZodType<T>, text: string, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`collateral ${what} is not valid JSON`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`collateral ${what} is malformed: ${i === undefined ? 'invalid' : `${i.path.join('.')}: ${i.message}`}`);
  }
  return r.data;
}

/** Validates collateral (dcap-qvl shape, or already normalized) into a frozen Collateral. Throws on bad input. */
export function normalizeCollateral(input: DcapCollateral | Collateral | unknown): Collateral {
  if (isCollateral(input)) return input;
  const r = DcapCollateralSchema.safeParse(input);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`collateral is malformed: ${i === undefined ? 'invalid' : `${i.path.join('.') || '(root)'}: ${i.message}`}`);
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

/** Where a verifier gets collateral for a platform: its FMSPC (12 hex chars, upper case) and PCK CA. */
export interface CollateralSource {
  get(fmspc: string, ca: PckCa): Promise<Collateral>;
}

function checkFmspc(fmspc: string): string {
  if (typeof fmspc !== 'string' || !/^[0-9a-fA-F]{12}$/.test(fmspc)) throw new Error(`invalid FMSPC "${fmspc}"`);
  return fmspc.toUpperCase();
}

function checkCa(ca: string): PckCa {
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

// ---------------------------------------------------------------------------------------------------------
// PCCS / Intel PCS client

export const INTEL_PCS_URL = 'https://api.trustedservices.intel.com';

export interface PccsLogger {
  warn(msg: string): void;
}

export interface PccsCollateralSourceOptions {
  /** PCCS or PCS base URL; default $EE_PCCS_URL, else Intel's PCS. A trailing /{sgx,tdx}/certification/v4 is stripped. */
  url?: string;
  fetch?: typeof globalThis.fetch;
  /** Wall clock in ms, for cache expiry (injectable for tests). */
  clock?: () => number;
  /** Refresh an item in the background when it is this close to its nextUpdate (default 1 hour). */
  refresh_ahead_ms?: number;
  /** Per-request timeout (default 10 s). */
  timeout_ms?: number;
  /** Where to get the root CA CRL if the server has no /rootcacrl (default: the root's CRL distribution point). */
  root_ca_crl_url?: string;
  logger?: PccsLogger;
}

interface Item<T> {
  value: T;
  next_update_ms: number;
}
interface Fetched {
  body: Buffer;
  headers: Headers;
}
interface SignedDoc {
  raw: string;
  signature: string;
  issuer_chain: string;
}
interface CrlItem {
  der: Buffer;
  issuer_chain: string;
}

const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/**
 * Returns the raw text of each top-level member of a JSON object, exactly as it appears in `text`. Intel
 * signs the bytes of the `tcbInfo`/`enclaveIdentity` member, so re-serializing a parsed object is wrong.
 */
export function rawJsonMembers(text: string): Map<string, string> {
  JSON.parse(text); // must be valid JSON as a whole
  const out = new Map<string, string>();
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i] as string)) i++;
  };
  const skipString = (): void => {
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  };
  const skipValue = (): void => {
    const c = text[i];
    if (c === '"') return skipString();
    if (c === '{' || c === '[') {
      let depth = 0;
      do {
        const d = text[i];
        if (d === '"') {
          skipString();
          continue;
        }
        if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') depth--;
        i++;
      } while (depth > 0 && i < text.length);
      return;
    }
    while (i < text.length && !',}] \t\r\n'.includes(text[i] as string)) i++;
  };
  ws();
  if (text[i] !== '{') throw new Error('expected a JSON object');
  i++;
  for (;;) {
    ws();
    if (text[i] === '}') break;
    const keyStart = i;
    skipString();
    const key = JSON.parse(text.slice(keyStart, i)) as string;
    ws();
    i++; // ':'
    ws();
    const start = i;
    skipValue();
    out.set(key, text.slice(start, i));
    ws();
    if (text[i] === ',') i++;
  }
  return out;
}

function decodeCrlBody(body: Buffer): Buffer {
  const text = body.toString('latin1').trim();
  if (body[0] === 0x30) return body;
  if (/^(?:[0-9a-fA-F]{2})+$/.test(text)) return Buffer.from(text, 'hex');
  const m = /^-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----$/.exec(text);
  if (m) return Buffer.from((m[1] as string).replace(/\s/g, ''), 'base64');
  throw new Error('CRL response is neither DER, hex nor PEM');
}

function crlNextUpdate(der: Buffer, what: string): number {
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(der);
  } catch (err) {
    throw new Error(`${what} is not a valid CRL: ${(err as Error).message}`);
  }
  if (crl.nextUpdate === undefined) throw new Error(`${what} has no nextUpdate`);
  return crl.nextUpdate.getTime();
}

/**
 * Fetches collateral from a PCCS or Intel's PCS (v4 API) and caches each piece until its own nextUpdate:
 * TCB info per FMSPC, PCK CRL per CA, QE identity and root CA CRL once. Pieces close to expiry are refreshed
 * in the background while the cached copy is still served; an expired piece is refetched before use, and if
 * that fails the request fails. Nothing here is trusted: the verifier checks every signature and date.
 */
export class PccsCollateralSource implements CollateralSource {
  readonly url: string;
  readonly #fetch: typeof globalThis.fetch;
  readonly #clock: () => number;
  readonly #refreshAhead: number;
  readonly #timeout: number;
  readonly #rootCrlUrl: string | undefined;
  readonly #logger: PccsLogger | undefined;
  readonly #items = new Map<string, Item<unknown>>();
  readonly #inflight = new Map<string, Promise<Item<unknown>>>();
  readonly #assembled = new Map<string, { parts: unknown[]; collateral: Collateral }>();
  /** Number of HTTP requests made (for tests and metrics). */
  requests = 0;

  constructor(opts: PccsCollateralSourceOptions = {}) {
    const base = opts.url ?? process.env.EE_PCCS_URL ?? INTEL_PCS_URL;
    let u: URL;
    try {
      u = new URL(base);
    } catch {
      throw new Error(`invalid PCCS URL "${base}"`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`PCCS URL must be http(s): "${base}"`);
    this.url = base.replace(/\/+$/, '').replace(/\/(sgx|tdx)\/certification\/v4$/, '');
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#clock = opts.clock ?? Date.now;
    this.#refreshAhead = opts.refresh_ahead_ms ?? 3_600_000;
    this.#timeout = opts.timeout_ms ?? 10_000;
    this.#rootCrlUrl = opts.root_ca_crl_url;
    this.#logger = opts.logger;
  }

  async get(fmspc: string, ca: PckCa): Promise<Collateral> {
    const f = checkFmspc(fmspc);
    const c = checkCa(ca);
    const [tcb, qe, pckCrl, rootCrl] = await Promise.all([
      this.#item(`tcb:${f}`, () => this.#fetchTcbInfo(f)),
      this.#item('qe', () => this.#fetchQeIdentity()),
      this.#item(`pckcrl:${c}`, () => this.#fetchPckCrl(c)),
      this.#item('rootcrl', () => this.#fetchRootCrl()),
    ]);
    const key = `${f}:${c}`;
    const parts = [tcb, qe, pckCrl, rootCrl];
    const prev = this.#assembled.get(key);
    if (prev !== undefined && prev.parts.every((p, i) => p === parts[i])) return prev.collateral;
    const collateral = normalizeCollateral({
      pck_crl_issuer_chain: pckCrl.issuer_chain,
      root_ca_crl: rootCrl.der.toString('hex'),
      pck_crl: pckCrl.der.toString('hex'),
      tcb_info_issuer_chain: tcb.issuer_chain,
      tcb_info: tcb.raw,
      tcb_info_signature: tcb.signature,
      qe_identity_issuer_chain: qe.issuer_chain,
      qe_identity: qe.raw,
      qe_identity_signature: qe.signature,
    });
    this.#assembled.set(key, { parts, collateral });
    return collateral;
  }

  async #item<T>(key: string, fetcher: () => Promise<Item<T>>): Promise<T> {
    const now = this.#clock();
    const cached = this.#items.get(key) as Item<T> | undefined;
    if (cached !== undefined && now < cached.next_update_ms - this.#refreshAhead) return cached.value;
    if (cached !== undefined && now < cached.next_update_ms) {
      this.#refresh(key, fetcher).catch((err: unknown) => {
        this.#logger?.warn(`PCCS: background refresh of ${key} failed, serving the cached copy: ${(err as Error).message}`);
      });
      return cached.value;
    }
    return (await this.#refresh(key, fetcher)).value;
  }

  #refresh<T>(key: string, fetcher: () => Promise<Item<T>>): Promise<Item<T>> {
    const running = this.#inflight.get(key) as Promise<Item<T>> | undefined;
    if (running !== undefined) return running;
    const p = fetcher()
      .then((item) => {
        if (!(item.next_update_ms > this.#clock())) throw new Error(`${key} from the PCCS is already past its nextUpdate`);
        this.#items.set(key, item);
        return item;
      })
      .finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p as Promise<Item<unknown>>);
    return p;
  }

  async #get(url: string): Promise<Fetched> {
    this.requests++;
    const res = await this.#fetch(url, { signal: AbortSignal.timeout(this.#timeout), redirect: 'error' });
    if (!res.ok) throw new Error(`PCCS ${url} answered ${res.status}`);
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length > MAX_RESPONSE_BYTES) throw new Error(`PCCS ${url} response is too large`);
    return { body, headers: res.headers };
  }

  #header(f: Fetched, names: string[], url: string): string {
    for (const n of names) {
      const v = f.headers.get(n);
      if (v !== null && v !== '') {
        const chain = decodeURIComponent(v);
        splitPemChain(chain); // must be a PEM chain
        return chain;
      }
    }
    throw new Error(`PCCS ${url} sent no ${names[0]} header`);
  }

  #signedDoc(f: Fetched, member: string, url: string): { raw: string; signature: string } {
    const text = f.body.toString('utf8');
    let members: Map<string, string>;
    try {
      members = rawJsonMembers(text);
    } catch (err) {
      throw new Error(`PCCS ${url} sent invalid JSON: ${(err as Error).message}`);
    }
    const raw = members.get(member);
    const sig = members.get('signature');
    if (raw === undefined || sig === undefined) throw new Error(`PCCS ${url} response lacks ${member} or signature`);
    const signature = JSON.parse(sig) as unknown;
    if (typeof signature !== 'string' || !/^(?:[0-9a-fA-F]{2})+$/.test(signature)) throw new Error(`PCCS ${url} signature is not hex`);
    return { raw, signature };
  }

  #v4(tee: 'sgx' | 'tdx', path: string): string {
    return `${this.url}/${tee}/certification/v4/${path}`;
  }

  async #fetchTcbInfo(fmspc: string): Promise<Item<SignedDoc>> {
    const url = this.#v4('tdx', `tcb?fmspc=${fmspc}`);
    const f = await this.#get(url);
    const doc = this.#signedDoc(f, 'tcbInfo', url);
    const info = parseDoc(TcbInfoSchema, doc.raw, 'tcb_info');
    if (info.fmspc.toUpperCase() !== fmspc) throw new Error(`PCCS returned TCB info for FMSPC ${info.fmspc}, asked for ${fmspc}`);
    if (info.id !== 'TDX') throw new Error(`PCCS returned "${info.id}" TCB info, asked for TDX`);
    const issuer_chain = this.#header(f, ['TCB-Info-Issuer-Chain', 'SGX-TCB-Info-Issuer-Chain'], url);
    return { value: { ...doc, issuer_chain }, next_update_ms: Date.parse(info.nextUpdate) };
  }

  async #fetchQeIdentity(): Promise<Item<SignedDoc>> {
    const url = this.#v4('tdx', 'qe/identity');
    const f = await this.#get(url);
    const doc = this.#signedDoc(f, 'enclaveIdentity', url);
    const qe = parseDoc(QeIdentitySchema, doc.raw, 'qe_identity');
    if (qe.id !== 'TD_QE') throw new Error(`PCCS returned the "${qe.id}" identity, asked for TD_QE`);
    const issuer_chain = this.#header(f, ['SGX-Enclave-Identity-Issuer-Chain', 'Enclave-Identity-Issuer-Chain'], url);
    return { value: { ...doc, issuer_chain }, next_update_ms: Date.parse(qe.nextUpdate) };
  }

  async #fetchPckCrl(ca: PckCa): Promise<Item<CrlItem>> {
    const url = this.#v4('sgx', `pckcrl?ca=${ca}&encoding=der`);
    const f = await this.#get(url);
    const der = decodeCrlBody(f.body);
    const issuer_chain = this.#header(f, ['SGX-PCK-CRL-Issuer-Chain'], url);
    return { value: { der, issuer_chain }, next_update_ms: crlNextUpdate(der, `PCK CRL (${ca})`) };
  }

  async #fetchRootCrl(): Promise<Item<CrlItem>> {
    const fetchCrl = async (url: string): Promise<Item<CrlItem>> => {
      const der = decodeCrlBody((await this.#get(url)).body);
      return { value: { der, issuer_chain: '' }, next_update_ms: crlNextUpdate(der, 'root CA CRL') };
    };
    if (this.#rootCrlUrl !== undefined) return fetchCrl(this.#rootCrlUrl);
    try {
      return await fetchCrl(this.#v4('sgx', 'rootcacrl'));
    } catch (err) {
      // Intel's PCS has no /rootcacrl: fall back to the CRL distribution point of the root certificate.
      const cdp = await this.#rootCdp().catch(() => undefined);
      if (cdp === undefined) throw new Error(`cannot fetch the root CA CRL: ${(err as Error).message}`);
      return fetchCrl(cdp);
    }
  }

  /** The root certificate's CRL distribution point, read from the QE identity issuer chain. */
  async #rootCdp(): Promise<string | undefined> {
    const qe = await this.#item('qe', () => this.#fetchQeIdentity());
    const chain = splitPemChain(qe.issuer_chain);
    const root = new x509.X509Certificate(chain[chain.length - 1] as Buffer);
    const ext = root.getExtension(x509.CRLDistributionPointsExtension);
    for (const dp of ext?.distributionPoints ?? []) {
      for (const name of dp.distributionPoint?.fullName ?? []) {
        const uri = name.uniformResourceIdentifier;
        if (typeof uri === 'string' && /^https?:\/\//.test(uri)) return uri;
      }
    }
    return undefined;
  }
}
