// A small, strict DER reader: just enough to walk Intel's SGX certificate extension and a few X.509 fields
// without trusting a general-purpose ASN.1 decoder with attacker-supplied bytes. Definite lengths only, minimal
// length encoding, single-byte tags, every element must fit inside its parent; anything else throws.

export const DER_TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export interface DerElement {
  tag: number;
  /** Offset of the tag byte within the buffer that was read. */
  start: number;
  /** Offset just past the element. */
  end: number;
  /** The contents octets (a view into the input). */
  value: Buffer;
  /** The whole element, tag and length included (a view into the input). */
  raw: Buffer;
}

export class DerError extends Error {}

/** Reads one element at `offset`, bounded by `limit` (default: the end of `buf`). */
export function readDer(buf: Buffer, offset = 0, limit = buf.length): DerElement {
  if (offset + 2 > limit) throw new DerError('DER: truncated element header');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('DER: multi-byte tags are not supported');
  let pos = offset + 1;
  const first = buf[pos++] as number;
  let len: number;
  if (first < 0x80) {
    len = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError('DER: indefinite length is not allowed');
    if (n > 4) throw new DerError('DER: length too large');
    if (pos + n > limit) throw new DerError('DER: truncated length');
    if (buf[pos] === 0) throw new DerError('DER: non-minimal length encoding');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[pos++] as number);
    if (len < 0x80) throw new DerError('DER: non-minimal length encoding');
  }
  const end = pos + len;
  if (end > limit) throw new DerError('DER: element runs past its container');
  return { tag, start: offset, end, value: buf.subarray(pos, end), raw: buf.subarray(offset, end) };
}

/** Reads exactly one element that spans all of `buf`. */
export function readDerExact(buf: Buffer): DerElement {
  const el = readDer(buf, 0, buf.length);
  if (el.end !== buf.length) throw new DerError('DER: trailing bytes after element');
  return el;
}

/** The children of a constructed element (SEQUENCE/SET or context-specific constructed). */
export function derChildren(el: DerElement): DerElement[] {
  if ((el.tag & 0x20) === 0) throw new DerError('DER: expected a constructed element');
  const out: DerElement[] = [];
  const v = el.value;
  let pos = 0;
  while (pos < v.length) {
    const child = readDer(v, pos, v.length);
    out.push(child);
    pos = child.end;
  }
  return out;
}

export function expectTag(el: DerElement, tag: number, what: string): DerElement {
  if (el.tag !== tag)
    throw new DerError(`DER: ${what}: expected tag 0x${tag.toString(16)}, got 0x${el.tag.toString(16)}`);
  return el;
}

/** Dotted-decimal OID from the contents of an OBJECT IDENTIFIER. */
export function decodeOid(value: Buffer): string {
  if (value.length === 0) throw new DerError('DER: empty OID');
  const arcs: number[] = [];
  let acc = 0;
  let started = false;
  for (let i = 0; i < value.length; i++) {
    const b = value[i] as number;
    if (!started && b === 0x80) throw new DerError('DER: non-minimal OID arc');
    started = true;
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) throw new DerError('DER: OID arc too large');
    if ((b & 0x80) === 0) {
      arcs.push(acc);
      acc = 0;
      started = false;
    }
  }
  if (started) throw new DerError('DER: truncated OID');
  const first = arcs.shift() as number;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

/** A non-negative INTEGER or ENUMERATED that fits in a JS number. */
export function decodeUnsigned(value: Buffer): number {
  if (value.length === 0) throw new DerError('DER: empty integer');
  if (((value[0] as number) & 0x80) !== 0) throw new DerError('DER: negative integer');
  if (value.length > 1 && value[0] === 0 && ((value[1] as number) & 0x80) === 0) {
    throw new DerError('DER: non-minimal integer');
  }
  if (value.length > 7) throw new DerError('DER: integer too large');
  let n = 0;
  for (const b of value) n = n * 256 + b;
  return n;
}
