// WebSocket (any HTTP Upgrade) to an app through the tunnel: the request head travels with `upgrade: true`;
// on 101 both directions become raw bytes on the same stream under the same flow control.

import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ResetCode, resetToHttp, type MuxStream, type ResponseHead } from '@easyenclave/protocol';
import { rawErrorResponse } from '../http-errors.js';
import { isRefused } from '../tunnel/router.js';
import { buildHead, openStreamError, targetError, type ForwardOptions, type Tunnel } from './forward.js';
import { refusalError } from './refusals.js';

function statusBlock(head: ResponseHead, extra: string): string {
  let s = `HTTP/1.1 ${head.status} ${STATUS_CODES[head.status] ?? ''}\r\n`;
  for (const [k, v] of head.headers) {
    if (head.status !== 101 && (k.toLowerCase() === 'transfer-encoding' || k.toLowerCase() === 'connection')) continue;
    s += `${k}: ${v}\r\n`;
  }
  return s + extra + '\r\n';
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
  if (refused) return void socket.end(rawErrorResponse(refused));
  const { router, config } = tunnel;
  const got = router.acquire(opts.app_name, null);
  const link = got instanceof Promise ? await got : got;
  if (isRefused(link)) {
    socket.end(rawErrorResponse(refusalError(link)));
    return;
  }
  if (socket.destroyed) return;
  let stream: MuxStream;
  try {
    stream = link.session.openStream(buildHead(req, opts, config.proxy_timeout_ms, true), false);
  } catch (err) {
    socket.end(rawErrorResponse(openStreamError(err)));
    return;
  }
  let timer: NodeJS.Timeout | null = setTimeout(() => {
    stream.reset(ResetCode.CANCEL, 'response timeout');
    socket.end(rawErrorResponse({ status: 504, code: 'agent_timeout', message: 'no response from the agent in time' }));
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
  stream.onHeaders = (head) => {
    clear();
    // Anything but 101 is an ordinary response, after which the connection closes.
    socket.write(statusBlock(head, head.status === 101 ? '' : 'Connection: close\r\n'));
  };
  stream.onData = (chunk) => {
    const n = chunk.length;
    socket.write(chunk, () => stream.consumed(n));
  };
  stream.onEnd = () => socket.end();
  stream.onReset = (code, reason) => {
    clear();
    if (!stream.head_done && socket.writable) {
      const m = resetToHttp(code);
      socket.end(rawErrorResponse({ status: m.status, code: m.code, message: reason || m.code }));
    } else {
      socket.destroy();
    }
  };
}
