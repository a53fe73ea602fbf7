// PCCS / Intel PCS client: fetches the collateral of each platform and caches every piece until its own
// nextUpdate. Nothing fetched is trusted; the verifier checks every signature and date.
import { normalizeCollateral } from './collateral-normalize.js';
import type { Collateral } from './collateral-normalize.js';
import { parseDoc, QeIdentitySchema, TcbInfoSchema } from './collateral-schema.js';
import { checkCa, checkFmspc } from './collateral-source.js';
import type { CollateralSource } from './collateral-source.js';
import { crlNextUpdate, decodeCrlBody, rawJsonMembers } from './pccs-response.js';
import type { PckCa } from './pck.js';
import { splitPemChain, x509 } from './x509.js';

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
        this.#logger?.warn(
          `PCCS: background refresh of ${key} failed, serving the cached copy: ${(err as Error).message}`,
        );
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
        if (!(item.next_update_ms > this.#clock()))
          throw new Error(`${key} from the PCCS is already past its nextUpdate`);
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
    if (typeof signature !== 'string' || !/^(?:[0-9a-fA-F]{2})+$/.test(signature))
      throw new Error(`PCCS ${url} signature is not hex`);
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
    if (info.fmspc.toUpperCase() !== fmspc)
      throw new Error(`PCCS returned TCB info for FMSPC ${info.fmspc}, asked for ${fmspc}`);
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
