// Sealed messages: a header, an optional meta frame, then body frames ending with a FINAL frame.
//
//   request  = magic‖kind=1‖suite‖key_id‖enc ‖ frames   (HPKE to the recipient's X25519 key)
//   response = magic‖kind=2‖suite‖nonce      ‖ frames   (key exported from the request's HPKE context)
//
// MessageSealer writes one, MessageOpener reads one incrementally from any chunking of its bytes. Both are
// sequential: await each call before the next. docs/confidential.md has the byte layout and derivations.
import {
  AEAD_ID,
  AEAD_NONCE_BYTES,
  AES_KEY_BYTES,
  COMMON_HEADER_BYTES,
  ENC_BYTES,
  FLAG_FINAL,
  FLAG_META,
  KDF_ID,
  KEM_ID,
  KEY_ID_BYTES,
  KIND_REQUEST,
  KIND_RESPONSE,
  LABEL_REQUEST_INFO,
  LABEL_REQUEST_KEYS,
  LABEL_RESPONSE_KEYS,
  LABEL_RESPONSE_SECRET,
  MAX_AAD_BYTES,
  MAX_CHUNK_PLAINTEXT_BYTES,
  MAX_META_BYTES,
  REQUEST_HEADER_BYTES,
  RESPONSE_HEADER_BYTES,
  RESPONSE_NONCE_BYTES,
  SEAL_MAGIC,
  SEAL_VERSION,
} from './constants.js';
import { concatBytes, copyOf, equalBytes, randomBytes, toHex, utf8 } from './bytes.js';
import { sealCrypto } from './provider.js';
import { SealError } from './errors.js';
import { ChunkCipher, FrameParser } from './frames.js';
import { setupRecipient, setupSender, type Exporter } from './hpke.js';
import { sealTarget, type RecipientKey } from './keys.js';

export interface SealOptions {
  /** Additional data bound into the message's keys (not sent): the opener must give the same bytes. */
  aad?: Uint8Array;
  /** A small record sealed ahead of the body (≤ 64 KiB), e.g. the inner HTTP headers. */
  meta?: Uint8Array | null;
}

export interface OpenOptions {
  aad?: Uint8Array;
  /** Refuse a body whose plaintext exceeds this many bytes (default: no limit beyond the caller's). */
  max_body_bytes?: number;
}

const EMPTY = new Uint8Array(0);

function checkAad(aad: Uint8Array | undefined): Uint8Array {
  const a = aad ?? EMPTY;
  if (!(a instanceof Uint8Array)) throw new TypeError('aad must be a Uint8Array');
  if (a.length > MAX_AAD_BYTES) throw new SealError('too_large', `additional data over ${MAX_AAD_BYTES} bytes`);
  return a;
}

function commonHeader(kind: number): Uint8Array {
  const h = new Uint8Array(COMMON_HEADER_BYTES);
  h.set(SEAL_MAGIC, 0);
  h[4] = kind;
  h[5] = KEM_ID >>> 8;
  h[6] = KEM_ID & 0xff;
  h[7] = KDF_ID >>> 8;
  h[8] = KDF_ID & 0xff;
  h[9] = AEAD_ID >>> 8;
  h[10] = AEAD_ID & 0xff;
  return h;
}

/** Checks the shared 11 bytes; the error says what differs so a peer on another version knows why. */
function checkCommonHeader(h: Uint8Array, kind: number): void {
  if (h[0] !== SEAL_MAGIC[0] || h[1] !== SEAL_MAGIC[1] || h[2] !== SEAL_MAGIC[2]) {
    throw new SealError('malformed', 'not a sealed message (bad magic)');
  }
  if (h[3] !== SEAL_VERSION)
    throw new SealError('unsupported', `sealed message version ${h[3]} (this is ${SEAL_VERSION})`);
  if (h[4] !== kind) {
    throw new SealError(
      'malformed',
      `expected a sealed ${kind === KIND_REQUEST ? 'request' : 'response'}, got kind ${h[4]}`,
    );
  }
  const kem = (h[5]! << 8) | h[6]!;
  const kdf = (h[7]! << 8) | h[8]!;
  const aead = (h[9]! << 8) | h[10]!;
  if (kem !== KEM_ID || kdf !== KDF_ID || aead !== AEAD_ID) {
    throw new SealError(
      'unsupported',
      `cipher suite kem 0x${kem.toString(16)} kdf 0x${kdf.toString(16)} aead 0x${aead.toString(16)}`,
    );
  }
}

/** label ‖ 0x00 ‖ fixed-length header part ‖ aad: the label and header have fixed lengths, so the
 *  concatenation is unambiguous without length prefixes. */
function labelled(label: string, header: Uint8Array, aad: Uint8Array): Uint8Array {
  return concatBytes([utf8(label), new Uint8Array(1), header, aad]);
}

async function requestCipher(exporter: Exporter): Promise<ChunkCipher> {
  // One export for both: key ‖ base nonce (an export is a full HKDF-Expand; each costs a WebCrypto round).
  const km = await exporter.export(LABEL_REQUEST_KEYS, AES_KEY_BYTES + AEAD_NONCE_BYTES);
  return ChunkCipher.create(km.subarray(0, AES_KEY_BYTES), km.subarray(AES_KEY_BYTES));
}

/** OHTTP-style (RFC 9458 §4.4): secret = Export(label), salt = enc ‖ response_nonce, then key ‖ base nonce
 *  by HKDF with the response header and aad in the info. */
async function responseCipher(exporter: Exporter, header: Uint8Array, aad: Uint8Array): Promise<ChunkCipher> {
  const secret = await exporter.export(LABEL_RESPONSE_SECRET, AES_KEY_BYTES);
  const salt = concatBytes([exporter.enc, header.subarray(COMMON_HEADER_BYTES)]);
  const km = await sealCrypto().hkdf(
    salt,
    secret,
    labelled(LABEL_RESPONSE_KEYS, header, aad),
    AES_KEY_BYTES + AEAD_NONCE_BYTES,
  );
  return ChunkCipher.create(km.subarray(0, AES_KEY_BYTES), km.subarray(AES_KEY_BYTES));
}

/** Writes one sealed message. Frames come back as byte arrays to send in order; the header (and meta frame)
 *  lead the first call's output. */
export class MessageSealer {
  private prelude: Uint8Array | null;
  private ended = false;
  private busy = false;

  private constructor(
    private readonly cipher: ChunkCipher,
    header: Uint8Array,
    private readonly meta: Uint8Array | null,
    /** Request kind: the HPKE context's exporter, from which the response key comes. */
    readonly exporter: Exporter | null,
    /** Request kind: the recipient key id (hex). */
    readonly keyIdHex: string | null,
  ) {
    this.prelude = header;
  }

  /** A message sealed to a recipient's X25519 public key (32 raw bytes, or 64 lowercase hex characters). */
  static async request(recipientPublicKey: Uint8Array | string, o: SealOptions = {}): Promise<MessageSealer> {
    const aad = checkAad(o.aad);
    const meta = checkMeta(o.meta);
    const { key, keyId } = await sealTarget(recipientPublicKey);
    const prefix = concatBytes([commonHeader(KIND_REQUEST), keyId]);
    const exporter = await setupSender(key, labelled(LABEL_REQUEST_INFO, prefix, aad));
    const header = concatBytes([prefix, exporter.enc]);
    return new MessageSealer(await requestCipher(exporter), header, meta, exporter, toHex(keyId));
  }

  /** The response to a request whose HPKE context `exporter` is (the request's sealer or opener). */
  static async response(exporter: Exporter, o: SealOptions = {}): Promise<MessageSealer> {
    const aad = checkAad(o.aad);
    const meta = checkMeta(o.meta);
    const header = concatBytes([commonHeader(KIND_RESPONSE), randomBytes(RESPONSE_NONCE_BYTES)]);
    return new MessageSealer(await responseCipher(exporter, header, aad), header, meta, null, null);
  }

  /** The header and meta frame now, before any body (a response head is useful before its first byte).
   *  Empty when they were already returned. */
  async start(): Promise<Uint8Array[]> {
    if (this.prelude === null) return [];
    return this.run(EMPTY, false);
  }

  /** Body bytes (any length: split into frames of at most 64 KiB). */
  async write(plaintext: Uint8Array): Promise<Uint8Array[]> {
    return this.run(plaintext, false);
  }

  /** Ends the message: `last` (may be empty) goes out in the FINAL frame. */
  async end(last: Uint8Array = EMPTY): Promise<Uint8Array[]> {
    return this.run(last, true);
  }

  get finished(): boolean {
    return this.ended;
  }

  private async run(plaintext: Uint8Array, final: boolean): Promise<Uint8Array[]> {
    if (this.ended) throw new Error('write after the end of a sealed message');
    if (this.busy) throw new Error('MessageSealer calls must not overlap: await each one');
    this.busy = true;
    try {
      const out: Uint8Array[] = [];
      if (this.prelude !== null) {
        out.push(this.prelude);
        this.prelude = null;
        if (this.meta !== null) out.push(await this.cipher.seal(this.meta, FLAG_META));
      }
      let at = 0;
      // Non-final writes never emit an empty frame; the final one always emits exactly one FINAL frame.
      while (plaintext.length - at > MAX_CHUNK_PLAINTEXT_BYTES || (at < plaintext.length && !final)) {
        const n = Math.min(MAX_CHUNK_PLAINTEXT_BYTES, plaintext.length - at);
        const f = this.cipher.seal(plaintext.subarray(at, at + n), 0);
        // Await only a promise: a synchronous cipher then costs no microtask turn per frame.
        out.push(f instanceof Promise ? await f : f);
        at += n;
      }
      if (final) {
        const f = this.cipher.seal(plaintext.subarray(at), FLAG_FINAL);
        out.push(f instanceof Promise ? await f : f);
        this.ended = true;
      }
      return out;
    } finally {
      this.busy = false;
    }
  }
}

function checkMeta(meta: Uint8Array | null | undefined): Uint8Array | null {
  if (meta === undefined || meta === null) return null;
  if (!(meta instanceof Uint8Array)) throw new TypeError('meta must be a Uint8Array');
  if (meta.length > MAX_META_BYTES) throw new SealError('too_large', `meta over ${MAX_META_BYTES} bytes`);
  return meta;
}

type OpenerState = 'header' | 'frames' | 'done';

/** Reads one sealed message from its bytes in any chunking; returns authenticated body plaintext only. */
export class MessageOpener {
  private readonly parser = new FrameParser();
  private cipher: ChunkCipher | null = null;
  private state: OpenerState = 'header';
  private busy = false;
  private body_bytes = 0;
  private _meta: Uint8Array | null = null;
  private _started = false;
  private _exporter: Exporter | null = null;
  private _keyIdHex: string | null = null;
  private readonly aad: Uint8Array;
  private readonly max_body_bytes: number;

  private constructor(
    private readonly kind: number,
    private readonly recipient: RecipientKey | null,
    private readonly responseTo: Exporter | null,
    o: OpenOptions,
  ) {
    this.aad = checkAad(o.aad);
    this.max_body_bytes = o.max_body_bytes ?? Number.POSITIVE_INFINITY;
  }

  /** Opens a request-kind message with the recipient's private key. */
  static request(recipient: RecipientKey, o: OpenOptions = {}): MessageOpener {
    return new MessageOpener(KIND_REQUEST, recipient, null, o);
  }

  /** Opens the response to a request whose HPKE context `exporter` is. */
  static response(exporter: Exporter, o: OpenOptions = {}): MessageOpener {
    return new MessageOpener(KIND_RESPONSE, null, exporter, o);
  }

  /** The first frame was opened: `meta` is known (null when the message has none). */
  get started(): boolean {
    return this._started;
  }
  get meta(): Uint8Array | null {
    return this._meta;
  }
  /** The FINAL frame was opened. */
  get finished(): boolean {
    return this.state === 'done';
  }
  /** Request kind, after the header: the HPKE context's exporter (to seal the response). */
  get exporter(): Exporter | null {
    return this._exporter;
  }
  /** Request kind, after the header: the key id the message names. */
  get keyIdHex(): string | null {
    return this._keyIdHex;
  }

  /** Feeds the next bytes of the message; returns the body plaintext they complete, authenticated. */
  async push(bytes: Uint8Array): Promise<Uint8Array[]> {
    if (this.busy) throw new Error('MessageOpener.push calls must not overlap: await each one');
    if (this.state === 'done') {
      if (bytes.length > 0) throw new SealError('trailing_data', 'bytes after the final frame');
      return [];
    }
    this.busy = true;
    try {
      this.parser.push(bytes);
      const out: Uint8Array[] = [];
      if (this.state === 'header' && !(await this.readHeader())) return out;
      for (let f = this.parser.next(); f !== null; f = this.state === 'done' ? null : this.parser.next()) {
        const first = this.cipher!.frames === 0;
        const meta = (f.flags & FLAG_META) !== 0;
        const final = (f.flags & FLAG_FINAL) !== 0;
        if (meta && (!first || final))
          throw new SealError('malformed', 'a meta frame may only be the first, non-final frame');
        const opened = this.cipher!.open(f);
        const pt = opened instanceof Promise ? await opened : opened;
        this._started = true;
        if (meta) {
          this._meta = pt;
          continue;
        }
        if (pt.length === 0 && !final) throw new SealError('malformed', 'empty non-final frame');
        this.body_bytes += pt.length;
        if (this.body_bytes > this.max_body_bytes) {
          throw new SealError('too_large', `sealed body exceeds ${this.max_body_bytes} bytes`);
        }
        if (pt.length > 0) out.push(pt);
        if (final) this.state = 'done';
      }
      if (this.state === 'done' && this.parser.buffered > 0) {
        throw new SealError('trailing_data', 'bytes after the final frame');
      }
      return out;
    } finally {
      this.busy = false;
    }
  }

  /** The message's bytes ended: anything short of the FINAL frame is a truncation. */
  end(): void {
    if (this.state === 'done') return;
    if (this.state === 'header') throw new SealError('truncated', 'sealed message ended inside its header');
    throw new SealError(
      'truncated',
      `sealed message ended after ${this.cipher!.frames} frames without its final frame`,
    );
  }

  /** Parses the header once it is complete; false while it is not. */
  private async readHeader(): Promise<boolean> {
    const need = this.kind === KIND_REQUEST ? REQUEST_HEADER_BYTES : RESPONSE_HEADER_BYTES;
    // Check what is in as soon as it is in, so a plaintext body or a message of the other kind is refused
    // at its first bytes, not after a whole header.
    if (this.parser.buffered < need) {
      if (this.parser.buffered >= COMMON_HEADER_BYTES)
        checkCommonHeader(this.parser.peek(COMMON_HEADER_BYTES), this.kind);
      else if (this.parser.buffered >= 4) checkMagicOnly(this.parser);
      return false;
    }
    const header = copyOf(this.parser.take(need));
    checkCommonHeader(header, this.kind);
    if (this.kind === KIND_REQUEST) {
      const key = this.recipient!;
      const keyId = header.subarray(COMMON_HEADER_BYTES, COMMON_HEADER_BYTES + KEY_ID_BYTES);
      this._keyIdHex = toHex(keyId);
      // Before any cryptography: a message for another key is refused, not tried.
      if (!equalBytes(keyId, key.keyId)) {
        throw new SealError('wrong_key', `sealed to key ${this._keyIdHex}, this receiver holds ${key.keyIdHex}`);
      }
      const enc = header.subarray(COMMON_HEADER_BYTES + KEY_ID_BYTES, COMMON_HEADER_BYTES + KEY_ID_BYTES + ENC_BYTES);
      const info = labelled(LABEL_REQUEST_INFO, header.subarray(0, COMMON_HEADER_BYTES + KEY_ID_BYTES), this.aad);
      this._exporter = await setupRecipient(key, enc, info);
      this.cipher = await requestCipher(this._exporter);
    } else {
      this.cipher = await responseCipher(this.responseTo!, header, this.aad);
    }
    this.state = 'frames';
    return true;
  }
}

function checkMagicOnly(parser: FrameParser): void {
  const probe = parser.peek(4);
  if (probe[0] !== SEAL_MAGIC[0] || probe[1] !== SEAL_MAGIC[1] || probe[2] !== SEAL_MAGIC[2]) {
    throw new SealError('malformed', 'not a sealed message (bad magic)');
  }
}
