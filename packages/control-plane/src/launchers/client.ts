// Requests from the control plane to a node's launcher, over the launcher's own tunnel link (a stream like a
// proxied request), carrying the link's session id so the launcher knows the control plane sent them. Bodies
// are bounded both ways; a stream that does not answer within the deadline is reset.
import { ResetCode, type HeaderList, type MuxStream } from '@easyenclave/protocol';
import { LAUNCHER_SESSION_HEADER } from '@easyenclave/protocol/launcher';
import type { AgentLink } from '../tunnel/link.js';

/** A launcher answer larger than this is refused (the state of 4096 jobs with sealed results fits). */
export const MAX_LAUNCHER_RESPONSE_BYTES = 64 * 1024 * 1024;
export const LAUNCHER_REQUEST_TIMEOUT_MS = 30_000;

export interface LauncherResponse {
  status: number;
  body: Buffer;
}

export class LauncherUnreachable extends Error {}

function headers(link: AgentLink, body: Buffer | null): HeaderList {
  const h: HeaderList = [
    ['host', 'launcher'],
    [LAUNCHER_SESSION_HEADER, link.session_id ?? ''],
  ];
  if (body !== null) h.push(['content-type', 'application/json'], ['content-length', String(body.length)]);
  return h;
}

/** Opens a stream to the launcher; the caller wires the response callbacks. */
export function openLauncherStream(
  link: AgentLink,
  method: string,
  path: string,
  body: Buffer | null,
  timeout_ms: number,
): MuxStream {
  if (link.closed || link.session_id === null) throw new LauncherUnreachable('the launcher is not connected');
  let stream: MuxStream;
  try {
    stream = link.session.openStream({ method, path, headers: headers(link, body), timeout_ms }, body === null);
  } catch (err) {
    throw new LauncherUnreachable(`the launcher takes no new streams: ${(err as Error).message}`);
  }
  if (body !== null) {
    stream.write(body);
    stream.end();
  }
  return stream;
}

/** One request with a JSON body (or none) and a buffered answer. Rejects with LauncherUnreachable. */
export function launcherRequest(
  link: AgentLink,
  method: string,
  path: string,
  json?: unknown,
  timeout_ms = LAUNCHER_REQUEST_TIMEOUT_MS,
): Promise<LauncherResponse> {
  return new Promise((resolve, reject) => {
    const body = json === undefined ? null : Buffer.from(JSON.stringify(json), 'utf8');
    let stream: MuxStream;
    try {
      stream = openLauncherStream(link, method, path, body, timeout_ms);
    } catch (err) {
      return reject(err as Error);
    }
    let status = 0;
    const parts: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      stream.reset(ResetCode.CANCEL, 'launcher request timeout');
      reject(new LauncherUnreachable(`no answer from the launcher within ${timeout_ms} ms`));
    }, timeout_ms + 1000);
    stream.onHeaders = (head) => (status = head.status);
    stream.onData = (chunk) => {
      size += chunk.length;
      if (size > MAX_LAUNCHER_RESPONSE_BYTES) {
        clearTimeout(timer);
        stream.reset(ResetCode.TOO_LARGE, 'launcher answer too large');
        return reject(new LauncherUnreachable('the launcher answered too much'));
      }
      parts.push(chunk);
      stream.consumed(chunk.length);
      // The last chunk may carry END_STREAM itself: then no separate end event follows.
      if (stream.remote_ended) finish();
    };
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ status, body: Buffer.concat(parts) });
    };
    stream.onEnd = finish;
    stream.onReset = (_code, reason) => {
      clearTimeout(timer);
      reject(new LauncherUnreachable(`the launcher stream was reset: ${reason}`));
    };
  });
}
