// Forwards one HTTP request over the tunnel: opens a stream on a chosen agent, streams the body up with
// backpressure, streams the response down with credit returned only once the client socket took the bytes,
// maps resets and timeouts to clear HTTP errors, and retries on another agent only when the request
// certainly never reached a backend.

import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  HeadError,
  headersFromRaw,
  MAX_REQUEST_PATH_BYTES,
  resetToHttp,
  ResetCode,
  type HeaderList,
  type MuxStream,
  type RequestHead,
} from '@easyenclave/protocol';
import { sendRawError, type ApiError } from '../http-errors.js';
import { requestIdOf } from '../http/request-id.js';
import type { ControlPlaneConfig } from '../config.js';
import { pinnedAgent, pinnedKeyId } from './pinning.js';
import type { AgentLink } from '../tunnel/link.js';
import { isRefused, type Router } from '../tunnel/router.js';
import { refusalError } from './refusals.js';
import type { ProxyMetrics } from '../metrics.js';
import { BodyLength, clientHead, OUR_REQUEST_ID, trailersForClient, type EntryPolicy } from './response-head.js';

/** What the proxy uses of the tunnel: the router (it picks the agent), and the limits. */
export interface Tunnel {
  readonly router: Router;
  readonly config: ControlPlaneConfig;
}

export interface ForwardOptions {
  app_name: string;
  /** Path and query to send to the backend. */
  path: string;
  /** How the request arrived, for X-Forwarded-* headers. */
  forwarded_host: string | undefined;
  forwarded_proto: string;
  /** Which entry the request came through. */
  policy: EntryPolicy;
}

/** The host entry: each app on its own origin. */
export const HOST_ENTRY: EntryPolicy = { path_entry: false, path_active_content: false };

/** A request's forwarding options, built in one place so every entry point hands over objects of one shape. */
export function forwardOptions(
  app_name: string,
  path: string,
  req: IncomingMessage,
  forwarded_proto: string,
  policy: EntryPolicy,
): ForwardOptions {
  return { app_name, path, forwarded_host: req.headers.host, forwarded_proto, policy };
}

const MAX_ATTEMPTS = 3;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);

/** True when the request carries no body, so it can be replayed on another agent. */
function hasNoBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (cl === undefined || cl === '0');
}

export function buildHead(
  req: IncomingMessage,
  opts: ForwardOptions,
  timeout_ms: number,
  upgrade: boolean,
): RequestHead {
  // The client's own X-Forwarded-* are claims we cannot check: drop them all and state what we saw.
  // X-Forwarded-For keeps the client's chain with the peer we saw appended (the usual proxy convention).
  const policy = opts.policy;
  // On the API's origin the browser's cookies are the API origin's, never the app's (response-head.ts).
  const drop_cookies = policy.path_entry && !policy.path_active_content;
  const headers: HeaderList = headersFromRaw(req.rawHeaders, upgrade ? KEEP_FOR_UPGRADE : undefined).filter(
    ([k]) =>
      !(k.length > 12 && k.toLowerCase().startsWith('x-forwarded-')) &&
      !(drop_cookies && k.length === 6 && k.toLowerCase() === 'cookie') &&
      !(k.length === 10 && k.toLowerCase() === OUR_REQUEST_ID),
  );
  // The app sees the id the client gets back and our log lines carry (a well-formed one the client sent).
  headers.push([OUR_REQUEST_ID, requestIdOf(req)]);
  const xff = req.headers['x-forwarded-for'];
  const peer = req.socket.remoteAddress ?? '';
  headers.push(['x-forwarded-for', xff ? `${xff}, ${peer}` : peer]);
  headers.push(['x-forwarded-proto', opts.forwarded_proto]);
  if (opts.forwarded_host) headers.push(['x-forwarded-host', opts.forwarded_host]);
  const head: RequestHead = { method: req.method ?? 'GET', path: opts.path, headers, timeout_ms };
  if (upgrade) head.upgrade = true;
  return head;
}
const KEEP_FOR_UPGRADE = new Set(['upgrade', 'connection']);

/** A request every agent would refuse is answered here, before an agent is chosen or waited for. */
export function targetError(opts: ForwardOptions): ApiError | null {
  // Only origin-form reaches a backend: `*` (OPTIONS) and absolute-form targets name no path on it.
  if (!opts.path.startsWith('/'))
    return { status: 400, code: 'bad_request', message: 'the request target must be a path starting with "/"' };
  if (opts.path.length > MAX_REQUEST_PATH_BYTES) {
    return {
      status: 414,
      code: 'uri_too_long',
      message: `request target of ${opts.path.length} bytes exceeds the limit of ${MAX_REQUEST_PATH_BYTES}`,
    };
  }
  return null;
}

/** Why a stream could not be opened: a head too large for one frame, or an agent that takes no new streams. */
export function openStreamError(err: unknown): ApiError {
  if (err instanceof HeadError) return { status: 431, code: 'headers_too_large', message: err.message };
  return { status: 503, code: 'agent_draining', message: 'agent stopped taking new streams', retry_after_s: 1 };
}

export async function forward(
  tunnel: Tunnel,
  req: IncomingMessage,
  res: ServerResponse,
  opts: ForwardOptions,
  metrics: ProxyMetrics,
): Promise<void> {
  const { config, router } = tunnel;
  const max_body = config.max_body_bytes;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (max_body > 0 && declared > max_body) {
    metrics.done(413);
    req.resume();
    return sendRawError(res, {
      status: 413,
      code: 'body_too_large',
      message: `request body of ${declared} bytes exceeds the limit of ${max_body}`,
    });
  }
  const refused = targetError(opts);
  if (refused) {
    metrics.done(refused.status);
    req.resume();
    return sendRawError(res, refused);
  }
  const pinned = pinnedKeyId(req.headers['ee-sealed']);
  if (pinned !== null) return forwardPinned(tunnel, req, res, opts, metrics, pinned);
  const replayable = hasNoBody(req);
  const tried = new Set<AgentLink>();
  let last_error: ApiError | null = null;
  for (let attempt = 1; ; attempt++) {
    // A retry takes another agent only if one is free right now; otherwise the first error stands
    // (a backend that refused connections is a 502, not a 503 after a wait).
    let link: AgentLink | ApiError;
    if (last_error === null) {
      const got = router.acquire(opts.app_name, null);
      const r = got instanceof Promise ? await got : got;
      link = isRefused(r) ? refusalError(r) : r;
    } else {
      link = router.pick(opts.app_name, tried) ?? last_error;
    }
    if (!('session' in link)) {
      metrics.done(link.status);
      req.resume();
      return sendRawError(res, link);
    }
    if (res.destroyed) return; // the client left while we waited
    tried.add(link);
    const outcome = await attemptOnce(config, link, req, res, opts, replayable);
    router.streamDone(link, opts.app_name);
    if (outcome === 'done') {
      metrics.done(res.statusCode);
      return;
    }
    // Never reached a backend: another agent may take it, if the body can be replayed.
    if (!replayable || attempt >= MAX_ATTEMPTS) {
      metrics.done(outcome.status);
      return sendRawError(res, outcome);
    }
    last_error = outcome;
  }
}

/** A sealed request goes to the agent holding its key or nowhere: one attempt, no failover (pinning.ts). */
async function forwardPinned(
  tunnel: Tunnel,
  req: IncomingMessage,
  res: ServerResponse,
  opts: ForwardOptions,
  metrics: ProxyMetrics,
  key_id: string,
): Promise<void> {
  const link = pinnedAgent(tunnel, opts.app_name, key_id);
  if (!('session' in link)) {
    metrics.done(link.status);
    req.resume();
    return sendRawError(res, link);
  }
  const outcome = await attemptOnce(tunnel.config, link, req, res, opts, hasNoBody(req));
  tunnel.router.streamDone(link, opts.app_name);
  metrics.done(outcome === 'done' ? res.statusCode : outcome.status);
  if (outcome !== 'done') sendRawError(res, outcome);
}

type Outcome = 'done' | ApiError;

function attemptOnce(
  config: ControlPlaneConfig,
  link: AgentLink,
  req: IncomingMessage,
  res: ServerResponse,
  opts: ForwardOptions,
  replayable: boolean,
): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    let stream: MuxStream;
    try {
      stream = link.session.openStream(buildHead(req, opts, config.proxy_timeout_ms, false), replayable);
    } catch (err) {
      return resolve(openStreamError(err));
    }
    let settled = false;
    let body_bytes = 0;
    let response_length = new BodyLength(null);
    let timer: NodeJS.Timeout | null = setTimeout(() => {
      timer = null;
      stream.reset(ResetCode.CANCEL, 'response timeout');
      finish({
        status: 504,
        code: 'agent_timeout',
        message: `no response from the agent within ${Math.round(config.proxy_timeout_ms / 1000)} s`,
      });
    }, config.proxy_timeout_ms + 1000); // the agent's own backend deadline fires first and names the cause
    // After the response head, the deadline becomes an idle timer, refreshed by every data frame.
    const armIdle = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        stream.reset(ResetCode.IDLE_TIMEOUT, 'idle timeout');
        res.destroy(new Error('idle timeout'));
        finish('done');
      }, config.proxy_idle_timeout_ms);
    };
    const finish = (o: Outcome) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      timer = null;
      cleanup();
      stream.detach(); // reset or ended by now: nothing more to hear (MuxStream.detach says why)
      resolve(o);
    };

    // Request body: client → tunnel, pausing the client while the stream's queue is full.
    const onReqData = (chunk: Buffer) => {
      body_bytes += chunk.length;
      if (config.max_body_bytes > 0 && body_bytes > config.max_body_bytes) {
        stream.reset(ResetCode.TOO_LARGE, 'request body too large');
        finish({
          status: 413,
          code: 'body_too_large',
          message: `request body exceeds the limit of ${config.max_body_bytes} bytes`,
        });
        return;
      }
      if (!stream.write(chunk)) req.pause();
    };
    const onReqEnd = () => stream.end();
    stream.onDrain = () => req.resume();
    if (!replayable) {
      req.on('data', onReqData);
      req.on('end', onReqEnd);
    }
    // Client went away: cancel the stream so the backend stops too.
    const onClose = () => {
      if (!res.writableFinished) {
        stream.reset(ResetCode.CANCEL, 'client disconnected');
        finish('done');
      }
    };
    res.on('close', onClose);
    const cleanup = () => {
      req.off('data', onReqData);
      req.off('end', onReqEnd);
      res.off('close', onClose);
    };

    stream.onHeaders = (head) => {
      const out = clientHead(head, req.method ?? 'GET', opts.policy);
      if ('refused' in out) {
        stream.reset(ResetCode.CANCEL, out.message);
        const status = out.refused === 'bad_response' ? 502 : 403;
        sendRawError(res, { status, code: out.refused, message: out.message });
        return finish('done');
      }
      response_length = new BodyLength(out.body_bytes);
      try {
        // Informational statuses never answer a plain request (undici consumes 100-continue at the agent).
        if (head.status < 200) throw new Error(`status ${head.status} on a non-upgrade request`);
        out.headers.push(OUR_REQUEST_ID, requestIdOf(req)); // the app's own was dropped by clientHead
        res.writeHead(out.status, out.headers);
      } catch (err) {
        stream.reset(ResetCode.PROTOCOL_ERROR, 'invalid response head');
        sendRawError(res, {
          status: 502,
          code: 'bad_response',
          message: `the agent sent an invalid response head: ${(err as Error).message}`,
        });
        return finish('done');
      }
      if (req.method === 'HEAD' || head.status === 204 || head.status === 304) res.flushHeaders();
      armIdle();
    };
    stream.onData = (chunk) => {
      timer?.refresh();
      const n = chunk.length;
      if (!response_length.take(n)) {
        // More than the head promised: what follows could pass for the next response on this connection.
        stream.reset(ResetCode.PROTOCOL_ERROR, 'response body longer than its Content-Length');
        res.destroy(new Error('response body longer than its Content-Length'));
        return finish('done');
      }
      // The last chunk (END_STREAM on this frame) goes out with the response's end: one write, not two.
      // (Short of the promised length, it does not end it: onEnd cuts the response instead.)
      if (stream.remote_ended && response_length.complete) res.end(chunk, () => stream.consumed(n));
      else res.write(chunk, () => stream.consumed(n));
    };
    stream.onTrailers = (trailers) => {
      try {
        res.addTrailers(trailersForClient(trailers));
      } catch {
        // Trailers only travel with chunked responses; otherwise they are dropped, as HTTP/1.1 requires.
      }
    };
    stream.onEnd = () => {
      if (!stream.head_done) return;
      if (!response_length.complete) {
        // Shorter than promised: the client must see a broken response, never wait for or misparse the rest.
        res.destroy(new Error('response body shorter than its Content-Length'));
        return finish('done');
      }
      if (!res.writableEnded) res.end();
      if (!replayable && !req.complete) req.resume(); // backend answered early: discard the rest of the upload
      finish('done');
    };
    stream.onReset = (code, reason) => {
      if (res.headersSent) {
        // Mid-response: the client must see a broken response, never a silently truncated one.
        res.destroy(new Error(`tunnel stream reset: ${reason}`));
        return finish('done');
      }
      const m = resetToHttp(code);
      // A tunnel lost before any response byte: a bodiless idempotent request is safe to send elsewhere.
      const lost = link.session.closed && replayable && IDEMPOTENT.has(req.method ?? '');
      const never_reached = (m.retryable || lost) && (replayable || body_bytes === 0);
      const err: ApiError = { status: m.status, code: m.code, message: reason || m.code };
      if (m.status === 503) err.retry_after_s = 1;
      if (never_reached) return finish(err);
      sendRawError(res, err);
      finish('done');
    };
  });
}
