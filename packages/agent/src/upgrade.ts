// An Upgrade request (WebSocket) to the backend: on 101 the backend socket and the tunnel stream are joined
// as raw byte pipes both ways; any other answer is relayed as an ordinary response.

import http from 'node:http';
import type { Socket } from 'node:net';
import { HOP_BY_HOP, ResetCode, type HeaderList, type MuxStream, type RequestHead } from '@easyenclave/protocol';
import { backendErrorCode } from './forwarder.js';

function rawToList(raw: string[], keep_upgrade: boolean): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!;
    const lower = k.toLowerCase();
    if (HOP_BY_HOP.has(lower) && !(keep_upgrade && (lower === 'upgrade' || lower === 'connection'))) continue;
    out.push([k, raw[i + 1]!]);
  }
  return out;
}

export function forwardUpgradeToBackend(backend_url: string, stream: MuxStream, head: RequestHead): void {
  const target = new URL(backend_url);
  const headers: string[] = [];
  for (const [k, v] of head.headers) if (k.toLowerCase() !== 'host') headers.push(k, v);
  const req = http.request({
    host: target.hostname,
    port: target.port || 80,
    method: head.method,
    path: head.path,
    headers,
    timeout: head.timeout_ms,
  });
  let socket: Socket | null = null;
  const early_from_client: Buffer[] = [];
  stream.onReset = () => {
    req.destroy();
    socket?.destroy();
  };
  req.on('timeout', () =>
    req.destroy(Object.assign(new Error('backend timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' })),
  );
  req.on('error', (err: Error & { code?: string }) => {
    if (!stream.closed && !stream.head_done)
      stream.reset(backendErrorCode(err), `backend: ${err.message}`.slice(0, 200));
    else if (!stream.closed) stream.reset(ResetCode.BACKEND_ERROR, 'backend connection failed');
  });
  req.on('upgrade', (res, sock: Socket, early: Buffer) => {
    socket = sock;
    sock.setNoDelay(true);
    stream.respond({ status: 101, headers: rawToList(res.rawHeaders, true) });
    if (early.length > 0) stream.write(early);
    sock.on('data', (chunk: Buffer) => {
      if (!stream.write(chunk)) sock.pause();
    });
    stream.onDrain = () => sock.resume();
    sock.on('end', () => stream.end());
    sock.on('error', () => stream.reset(ResetCode.BACKEND_ERROR, 'backend socket error'));
    sock.on('close', () => {
      if (!stream.closed) stream.reset(ResetCode.BACKEND_ERROR, 'backend socket closed');
    });
    stream.onData = (chunk) => {
      const n = chunk.length;
      sock.write(chunk, () => stream.consumed(n));
    };
    for (const chunk of early_from_client.splice(0)) stream.onData(chunk);
    stream.onEnd = () => sock.end();
  });
  req.on('response', (res) => {
    stream.respond({ status: res.statusCode ?? 502, headers: rawToList(res.rawHeaders, false) });
    res.on('data', (chunk: Buffer) => {
      if (!stream.write(chunk)) res.pause();
    });
    stream.onDrain = () => res.resume();
    res.on('end', () => stream.end());
    res.on('error', () => stream.reset(ResetCode.BACKEND_ERROR, 'backend response failed'));
  });
  // Bytes the client sends before the 101 wait here (bounded by the stream window) until the pipe exists.
  stream.onData = (chunk) => early_from_client.push(chunk);
  req.end();
}
