// Raw sockets for the HTTP edge suites: a client that writes exactly the bytes given (slow, partial, pipelined)
// from a chosen loopback address, and a minimal HTTP/1.1 response parser that frames responses the way a
// pipelining client would (Content-Length, chunked, or until close), so a forged response shows up as one.

import net from 'node:net';
import { onCleanup } from '../helpers/network.js';
import { deadline } from '../data-path/util.js';

export interface RawConn {
  socket: net.Socket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves once the server closed (or reset) the connection. */
  closed: Promise<void>;
  write(data: string | Buffer): void;
}

/** Connects to 127.0.0.1:port, from `local_address` (any 127.x.y.z) when given. */
export async function connectRaw(port: number, local_address?: string): Promise<RawConn> {
  const socket = net.connect({ port, host: '127.0.0.1', ...(local_address ? { localAddress: local_address } : {}) });
  onCleanup(() => socket.destroy());
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined); // a reset surfaces as 'close'
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    received: () => Buffer.concat(chunks),
    closed,
    write: (d) => {
      if (!socket.destroyed) socket.write(d);
    },
  };
}

/** The text received until the server closes the connection; fails naming `what` after `ms`. */
export async function untilClosed(c: RawConn, ms: number, what: string): Promise<string> {
  await deadline(c.closed, ms, `${what}: the server kept the connection open`);
  return c.received().toString('latin1');
}

export interface ParsedResponse {
  status: number;
  headers: Array<[string, string]>;
  body: string;
  /** False when the connection ended before the framing said the response was over. */
  complete: boolean;
}

export function header(r: ParsedResponse, name: string): string[] {
  return r.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
}

/** Splits a byte stream (latin1) into HTTP/1.1 responses, as a pipelining client frames them. */
export function parseResponses(text: string, head_request_indexes: ReadonlySet<number> = new Set()): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = text.slice(at, end).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!);
    if (!m) break;
    const headers: Array<[string, string]> = lines.slice(1).map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i), l.slice(i + 1).trim()];
    });
    const status = Number(m[1]);
    const r: ParsedResponse = { status, headers, body: '', complete: true };
    out.push(r);
    at = end + 4;
    const te = header(r, 'transfer-encoding').join(',').toLowerCase();
    const cl = header(r, 'content-length');
    if (head_request_indexes.has(out.length - 1) || status === 204 || status === 304 || status < 200) continue;
    if (te.includes('chunked')) {
      for (;;) {
        const eol = text.indexOf('\r\n', at);
        if (eol < 0) return ((r.complete = false), out);
        const size = parseInt(text.slice(at, eol), 16);
        at = eol + 2;
        if (size === 0) {
          const trailerEnd = text.indexOf('\r\n', at);
          if (trailerEnd < 0) return ((r.complete = false), out);
          at = trailerEnd + 2;
          break;
        }
        if (at + size + 2 > text.length) return ((r.body += text.slice(at)), (r.complete = false), out);
        r.body += text.slice(at, at + size);
        at += size + 2;
      }
    } else if (cl.length > 0) {
      const n = Number(cl[0]);
      r.body = text.slice(at, at + n);
      if (at + n > text.length) r.complete = false;
      at += n;
    } else {
      r.body = text.slice(at); // delimited by the close
      at = text.length;
    }
  }
  return out;
}
