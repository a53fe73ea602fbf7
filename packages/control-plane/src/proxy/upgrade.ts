// WebSocket (any HTTP Upgrade) to an app through the tunnel: the request head travels with `upgrade: true`;
// on 101 both directions become raw bytes on the same stream under the same flow control.

import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ResetCode, resetToHttp, type MuxStream, type ResponseHead } from '@easyenclave/protocol';
import { rawErrorResponse } from '../http-errors.js';
import { requestIdOf } from '../http/request-id.js';
import { isRefused } from '../tunnel/router.js';
import { buildHead, openStreamError, targetError, type ForwardOptions, type Tunnel } from './forward.js';
import { refusalError } from './refusals.js';
import { BodyLength, clientHead, OUR_REQUEST_ID, type HeadRefusal } from './response-head.js';

/** Fields a 101 never passes on: framing (the connection now carries raw bytes) and proxy-to-proxy ones. */
const NOT_ON_101 = new Set(['content-length', 'transfer-encoding', 'te', 'trailer', 'keep-alive']);

function statusBlock(status: number, headers: readonly string[], extra: string): string {
  let s = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (let i = 0; i + 1 < headers.length; i += 2) s += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return s + extra + '\r\n';
}

/** The head written for the agent's: a 101 as is but for framing fields; anything else as forward.ts would. */
function upgradeHead(
  head: ResponseHead,
  opts: ForwardOptions,
  request_id: string,
): { block: string; body_bytes: number | null } | HeadRefusal {
  if (head.status === 101) {
    const flat: string[] = [];
    const strict = opts.policy.path_entry && !opts.policy.path_active_content;
    for (const [k, v] of head.headers) {
      const lower = k.toLowerCase();
      if (NOT_ON_101.has(lower) || lower.startsWith('proxy-') || lower === OUR_REQUEST_ID) continue;
      if (strict && lower === 'set-cookie') continue;
      flat.push(k, v);
    }
    return { block: statusBlock(101, flat, `Request-Id: ${request_id}\r\n`), body_bytes: null };
  }
  // Anything but 101 is an ordinary response, after which the connection closes.
  const out = clientHead(head, 'GET', opts.policy);
  if ('refused' in out) return out;
  const ours = `Request-Id: ${request_id}\r\nConnection: close\r\n`;
  return { block: statusBlock(out.status, out.headers, ours), body_bytes: out.body_bytes };
}

export async function forwardUpgrade(
  tunnel: Tunnel,
  req: IncomingMessage,
  socket: Duplex,
  early: Buffer,
  opts: ForwardOptions,
): Promise<void> {
  socket.on('error', () => socket.destroy());
  const refused = targetError(opts);
  if (refused) return void socket.end(rawErrorResponse(refused, req));
  const { router, config } = tunnel;
  const got = router.acquire(opts.app_name, null);
  const link = got instanceof Promise ? await got : got;
  if (isRefused(link)) {
    socket.end(rawErrorResponse(refusalError(link), req));
    return;
  }
  if (socket.destroyed) return;
  let stream: MuxStream;
  try {
    stream = link.session.openStream(buildHead(req, opts, config.proxy_timeout_ms, true), false);
  } catch (err) {
    socket.end(rawErrorResponse(openStreamError(err), req));
    return;
  }
  let timer: NodeJS.Timeout | null = setTimeout(() => {
    stream.reset(ResetCode.CANCEL, 'response timeout');
    socket.end(
      rawErrorResponse({ status: 504, code: 'agent_timeout', message: 'no response from the agent in time' }, req),
    );
  }, config.proxy_timeout_ms + 1000);
  const clear = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  if (early.length > 0) stream.write(early);
  socket.on('data', (chunk: Buffer) => {
    if (!stream.write(chunk)) socket.pause();
  });
  stream.onDrain = () => socket.resume();
  socket.on('end', () => stream.end());
  socket.on('close', () => {
    clear();
    stream.reset(ResetCode.CANCEL, 'client disconnected');
    router.streamDone(link, opts.app_name);
  });
  let length = new BodyLength(null);
  stream.onHeaders = (head) => {
    clear();
    const out = upgradeHead(head, opts, requestIdOf(req));
    if ('refused' in out) {
      stream.reset(ResetCode.CANCEL, out.message);
      const status = out.refused === 'bad_response' ? 502 : 403;
      socket.end(rawErrorResponse({ status, code: out.refused, message: out.message }, req));
      return;
    }
    length = new BodyLength(out.body_bytes);
    socket.write(out.block);
  };
  stream.onData = (chunk) => {
    const n = chunk.length;
    if (!length.take(n)) {
      stream.reset(ResetCode.PROTOCOL_ERROR, 'response body longer than its Content-Length');
      return void socket.destroy();
    }
    socket.write(chunk, () => stream.consumed(n));
  };
  stream.onEnd = () => (length.complete ? socket.end() : socket.destroy());
  stream.onReset = (code, reason) => {
    clear();
    if (!stream.head_done && socket.writable) {
      const m = resetToHttp(code);
      socket.end(rawErrorResponse({ status: m.status, code: m.code, message: reason || m.code }, req));
    } else {
      socket.destroy();
    }
  };
}
