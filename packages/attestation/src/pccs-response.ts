// Decoding PCCS responses: the raw bytes of signed JSON members, CRL bodies in any of the encodings
// PCCS implementations send, and a CRL's nextUpdate (the cache expiry of that piece).
import { x509 } from './x509.js';

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

export function decodeCrlBody(body: Buffer): Buffer {
  const text = body.toString('latin1').trim();
  if (body[0] === 0x30) return body;
  if (/^(?:[0-9a-fA-F]{2})+$/.test(text)) return Buffer.from(text, 'hex');
  const m = /^-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----$/.exec(text);
  if (m) return Buffer.from((m[1] as string).replace(/\s/g, ''), 'base64');
  throw new Error('CRL response is neither DER, hex nor PEM');
}

export function crlNextUpdate(der: Buffer, what: string): number {
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(der);
  } catch (err) {
    throw new Error(`${what} is not a valid CRL: ${(err as Error).message}`);
  }
  if (crl.nextUpdate === undefined) throw new Error(`${what} has no nextUpdate`);
  return crl.nextUpdate.getTime();
}
