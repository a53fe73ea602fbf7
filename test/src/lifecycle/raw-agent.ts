// A hand-driven agent for precise protocol assertions: a plain `ws` client that speaks the JSON control
// protocol message by message (register, attest_response, health) and, when asked, serves proxied streams
// with a minimal MuxSession. Every wait is bounded, so a missing message fails the test instead of hanging.

import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import {
  decodeFrame,
  MuxSession,
  type Frame,
  type MuxStream,
  type RequestHead,
  type AttestRequestMessage,
  type AttestResponseMessage,
  type RegisterMessage,
} from '@easyenclave/protocol';
import {
  computeReportData,
  generateKeyset,
  publicKeyset,
  REPORT_DATA_DOMAINS,
  SandboxQuoteProvider,
  signPossession,
  type Keyset,
  type ReportDataDomain,
} from '@easyenclave/attestation';
import { onCleanup } from '../helpers/network.js';

// Loose on purpose: tests assert on whatever the control plane actually sent.

export type Msg = { type: string; [k: string]: any };

/** An attest_request as received (or anything carrying its nonce). */
export type Challenge = Pick<AttestRequestMessage, 'nonce'> | Msg;

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface RegisterFields {
  repo?: string;
  release_tag?: string;
  app_name?: string;
  network?: string;
  agent_id?: string;
}

/** How an answer is bound: its report_data domain and its proof of possession (docs/protocol.md). */
export interface BindingOptions {
  /** report_data domain (default: relay for a `client` challenge, tunnel otherwise, as a real agent does). */
  domain?: ReportDataDomain;
  /** null: send no pop_signature; a string: send this one instead of a real signature. */
  pop_signature?: string | null;
  /** Sign over this session id instead of the one this connection got in `registered`. */
  pop_session_id?: string;
}

export interface AnswerOptions extends BindingOptions {
  /** Compute report_data over this nonce instead of the challenge's. */
  nonce_for_report_data?: Buffer;
  /** Hash this keyset into report_data instead of the one sent in the message. */
  keyset_for_report_data?: Keyset;
  /** Send this keyset in the message (default: this agent's keyset). */
  keyset?: Keyset;
  /** Put this report_data hex in the message instead of the one in the quote. */
  report_data_hex?: string;
  /** Mutates the quote bytes before sending. */
  tamper?: (quote: Buffer) => void;
  /** Answer with this nonce (default: the challenge's). */
  nonce_hex?: string;
}

export const newAgentId = () => `raw-${randomBytes(8).toString('hex')}`;

export interface ConnectOptions {
  /** Reuse these per-boot keys (a reconnect of the same agent process keeps its keys). */
  keys?: ReturnType<typeof generateKeyset>;
  /** Dial from this local address (another 127.x.y.z stands for another host on loopback). */
  localAddress?: string;
}

export class RawAgent {
  readonly keys: ReturnType<typeof generateKeyset>;
  readonly keyset: Keyset;
  readonly inbox: Msg[] = [];
  /** Every control message ever received, in order. */
  readonly received: Msg[] = [];
  readonly closed: Promise<CloseInfo>;
  close_info: CloseInfo | null = null;
  /** Streams the control plane opened toward this agent (requests routed here). */
  streams_opened = 0;
  /** Binary frames received while not serving (decoded; undecodable ones are kept as null). */
  readonly frames: Array<Frame | null> = [];
  private readonly waiters = new Set<() => void>();
  private session: MuxSession | null = null;
  provider: SandboxQuoteProvider;
  reg: Required<RegisterFields>;
  /** The session id of this connection, from `registered`. */
  session_id: string | null = null;

  private constructor(
    readonly ws: WebSocket,
    reg: RegisterFields,
    keys = generateKeyset(),
  ) {
    this.keys = keys;
    this.keyset = publicKeyset(keys);
    this.reg = {
      repo: reg.repo ?? 'acme/demo',
      release_tag: reg.release_tag ?? 'v1.0.0',
      app_name: reg.app_name ?? 'demo',
      network: reg.network ?? 'sandbox-1',
      agent_id: reg.agent_id ?? newAgentId(),
    };
    this.provider = new SandboxQuoteProvider({ repo: this.reg.repo, release_tag: this.reg.release_tag });
    this.closed = new Promise<CloseInfo>((resolve) => {
      ws.on('close', (code, reason) => {
        this.close_info = { code, reason: reason.toString('utf8') };
        this.session?.destroy();
        resolve(this.close_info);
        this.notify();
      });
    });
    ws.on('error', () => undefined); // surfaces as 'close'
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        if (this.session) return this.session.handleFrame(data);
        try {
          this.frames.push(decodeFrame(Buffer.from(data)));
        } catch {
          this.frames.push(null);
        }
        this.notify();
        return;
      }
      let msg: Msg;
      try {
        msg = JSON.parse(data.toString('utf8')) as Msg;
      } catch {
        msg = { type: '<invalid json>', raw: data.toString('utf8') };
      }
      if (msg.type === 'registered' && typeof msg.session_id === 'string') this.session_id = msg.session_id;
      this.received.push(msg);
      this.inbox.push(msg);
      this.notify();
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves on the next received message or close, or after `ms`. */
  private changed(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  static async connect(ws_url: string, reg: RegisterFields = {}, opts: ConnectOptions = {}): Promise<RawAgent> {
    const ws = new WebSocket(ws_url, {
      perMessageDeflate: false,
      maxPayload: 1 << 20,
      ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
    });
    const agent = new RawAgent(ws, reg, opts.keys);
    onCleanup(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`tunnel handshake refused: ${res.statusCode}`)));
    });
    return agent;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  sendJson(msg: unknown): void {
    this.ws.send(JSON.stringify(msg));
  }

  sendText(text: string): void {
    this.ws.send(text);
  }

  sendBinary(buf: Buffer | Uint8Array): void {
    this.ws.send(buf, { binary: true });
  }

  /** Next control message of `type` (earlier messages of other types are skipped and kept in `received`). */
  async next(type: string, timeout_ms = 3000): Promise<Msg> {
    const deadline = Date.now() + timeout_ms;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      if (this.close_info) {
        throw new Error(
          `connection closed (${this.close_info.code} ${this.close_info.reason}) before a "${type}" message; got: ${JSON.stringify(this.received)}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no "${type}" message within ${timeout_ms} ms; got: ${JSON.stringify(this.received)}`);
      await this.changed(left);
    }
  }

  /** Waits until a binary frame matching `pred` has arrived (only while not serving). */
  async waitFrame(pred: (f: Frame) => boolean, timeout_ms = 3000): Promise<Frame> {
    const deadline = Date.now() + timeout_ms;
    for (;;) {
      const f = this.frames.find((x): x is Frame => x !== null && pred(x));
      if (f) return f;
      if (this.close_info)
        throw new Error(
          `connection closed (${this.close_info.code} ${this.close_info.reason}) before the expected frame`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `expected frame not received within ${timeout_ms} ms; got types ${JSON.stringify(this.frames.map((x) => x?.type ?? null))}`,
        );
      await this.changed(left);
    }
  }

  /** Resolves with the close code and reason, or throws when the connection stays open past the timeout. */
  async waitClose(timeout_ms = 3000): Promise<CloseInfo> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(
        () => reject(new Error(`connection still open after ${timeout_ms} ms; got: ${JSON.stringify(this.received)}`)),
        timeout_ms,
      );
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  registerMessage(overrides: Partial<RegisterMessage> = {}): RegisterMessage {
    return { type: 'register', ...this.reg, ...overrides };
  }

  register(overrides: Partial<RegisterMessage> = {}): void {
    this.sendJson(this.registerMessage(overrides));
  }

  /** The report_data domain a real agent uses for this challenge, unless the options say otherwise. */
  domainFor(req: Challenge, o: BindingOptions = {}): ReportDataDomain {
    return o.domain ?? ((req as Msg).reason === 'client' ? REPORT_DATA_DOMAINS.relay : REPORT_DATA_DOMAINS.tunnel);
  }

  /** The pop_signature field a real agent adds (none for a relayed challenge), or what the options ask for. */
  possession(req: Challenge, o: BindingOptions = {}): { pop_signature?: string } {
    if (o.pop_signature === null) return {};
    if (o.pop_signature !== undefined) return { pop_signature: o.pop_signature };
    if ((req as Msg).reason === 'client' && o.pop_session_id === undefined) return {};
    const session_id = o.pop_session_id ?? this.session_id;
    if (session_id === null) return {}; // not registered yet: nothing to sign over
    return { pop_signature: signPossession(this.keys, String(req.nonce), session_id) };
  }

  /** Builds an attest_response for a challenge; options produce the various wrong answers. */
  async buildAnswer(req: Challenge, o: AnswerOptions = {}): Promise<AttestResponseMessage> {
    const nonce = o.nonce_for_report_data ?? Buffer.from(String(req.nonce), 'hex');
    const report_data = computeReportData(this.domainFor(req, o), nonce, o.keyset_for_report_data ?? this.keyset);
    const quote = await this.provider.getQuote(report_data);
    o.tamper?.(quote);
    return {
      type: 'attest_response',
      nonce: o.nonce_hex ?? String(req.nonce),
      quote: quote.toString('base64'),
      report_data: o.report_data_hex ?? report_data.toString('hex'),
      measurements: { ...this.provider.measurements },
      keyset: o.keyset ?? this.keyset,
      ...this.possession(req, o),
    };
  }

  async answer(req: Challenge, o: AnswerOptions = {}): Promise<AttestResponseMessage> {
    const msg = await this.buildAnswer(req, o);
    this.sendJson(msg);
    return msg;
  }

  health(status: 'pass' | 'fail' = 'pass'): void {
    this.sendJson({ type: 'health', status });
  }

  /** Answers every proxied request with 200 "raw-agent" (what a trivial backend would do), or as `handler` does. */
  serve(handler?: (stream: MuxStream, head: RequestHead) => void): void {
    this.session ??= new MuxSession({
      role: 'acceptor',
      send: (frame, cb) => this.ws.send(frame, { binary: true }, cb),
      onStream: (stream, head) => {
        this.streams_opened++;
        if (handler) return handler(stream, head);
        stream.onData = (chunk) => stream.consumed(chunk.length);
        const body = Buffer.from('raw-agent');
        stream.respond({
          status: 200,
          headers: [
            ['content-type', 'text/plain'],
            ['content-length', String(body.length)],
          ],
        });
        stream.write(body);
        stream.end();
      },
      onProtocolError: (err) => this.ws.close(1002, err.message.slice(0, 100)),
    });
  }

  /** register → registered → attest_request → correct answer → attest_result ok → health pass. */
  async registerAndAttest(
    opts: { health?: boolean } = {},
  ): Promise<{ registered: Msg; request: Msg; result: Msg; response: AttestResponseMessage }> {
    this.register();
    const registered = await this.next('registered');
    const request = await this.next('attest_request');
    const response = await this.answer(request);
    const result = await this.next('attest_result');
    if (result.ok !== true) throw new Error(`attestation refused: ${JSON.stringify(result)}`);
    if (opts.health !== false) this.health('pass');
    return { registered, request, result, response };
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** Sends a WebSocket ping and resolves 'pong' if it comes back, or 'closed' if the connection ends first. */
export function pingOrClose(agent: RawAgent, timeout_ms = 3000): Promise<'pong' | 'closed'> {
  if (agent.close_info || !agent.open) return Promise.resolve('closed');
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`neither pong nor close within ${timeout_ms} ms`)), timeout_ms);
    const done = (r: 'pong' | 'closed') => {
      clearTimeout(t);
      agent.ws.off('pong', onPong);
      resolve(r);
    };
    const onPong = () => done('pong');
    agent.ws.on('pong', onPong);
    void agent.closed.then(() => done('closed'));
    try {
      agent.ws.ping();
    } catch {
      done('closed');
    }
  });
}
