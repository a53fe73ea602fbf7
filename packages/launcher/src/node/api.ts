// The launcher's API, served on loopback only and reached through its tunnel (the embedded agent forwards the
// control plane's requests to it). Every route but /health demands the tunnel connection's session id: only the
// control plane and this launcher know it, so a request proxied from the public (the launcher's app is routable
// like any other) is refused. node:http rather than fastify: five routes, no schemas to publish, no plugins.
import { timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Assignment, DeploymentAssignment, LAUNCHER_SESSION_HEADER, JOB_ID_RE } from '@easyenclave/protocol/launcher';
import { SEALED_MEDIA_TYPE } from '@easyenclave/protocol/seal/index';
import type { LauncherDeployments } from './deployments.js';
import { AssignmentRefused, type LauncherJobs } from './jobs.js';

/** The largest request body (an assignment with its sealed env). */
export const MAX_API_BODY_BYTES = 512 * 1024;

type Handler = (req: IncomingMessage, res: ServerResponse, id: string | null) => Promise<void>;

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const error = (res: ServerResponse, status: number, code: string, message: string) =>
  json(res, status, { error: { code, message } });

async function readBody(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > MAX_API_BODY_BYTES) throw new AssignmentRefused('too_large', `body over ${MAX_API_BODY_BYTES} bytes`);
    parts.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw new AssignmentRefused('bad_request', 'the body is not JSON');
  }
}

export class LauncherApi {
  readonly server: http.Server;

  constructor(
    private readonly jobs: LauncherJobs,
    private readonly sessions: () => string[],
    private readonly log: Logger,
    private readonly deployments: LauncherDeployments | null = null,
  ) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private authorised(req: IncomingMessage): boolean {
    const given = req.headers[LAUNCHER_SESSION_HEADER];
    if (typeof given !== 'string') return false;
    const g = Buffer.from(given);
    return this.sessions().some((s) => {
      const b = Buffer.from(s);
      return b.length === g.length && timingSafeEqual(b, g);
    });
  }

  private route(method: string, path: string): { handler: Handler; id: string | null } | null {
    if (method === 'GET' && path === '/v1/launcher/state') return { handler: this.state, id: null };
    if (method === 'POST' && path === '/v1/launcher/jobs') return { handler: this.assign, id: null };
    if (method === 'GET' && path === '/v1/launcher/deployments') return { handler: this.deploymentList, id: null };
    if (method === 'POST' && path === '/v1/launcher/deployments') return { handler: this.deploy, id: null };
    const d = /^\/v1\/launcher\/deployments\/(dep_[0-9a-f]{20}-[0-9]{1,6})$/.exec(path);
    if (d && method === 'DELETE') return { handler: this.undeploy, id: d[1]! };
    const m = /^\/v1\/launcher\/jobs\/([^/]+)(\/ack|\/logs)?$/.exec(path);
    if (!m || !JOB_ID_RE.test(m[1]!)) return null;
    const id = m[1]!;
    if (method === 'DELETE' && m[2] === undefined) return { handler: this.cancel, id };
    if (method === 'POST' && m[2] === '/ack') return { handler: this.ack, id };
    if (method === 'GET' && m[2] === '/logs') return { handler: this.logs, id };
    return null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    try {
      if (path === '/health') return json(res, 200, { status: 'pass' });
      if (!this.authorised(req)) return error(res, 403, 'forbidden', 'this API serves the control plane only');
      const r = this.route(req.method ?? 'GET', path);
      if (!r) return error(res, 404, 'not_found', 'no such launcher route');
      await r.handler(req, res, r.id);
    } catch (err) {
      if (err instanceof AssignmentRefused) return error(res, 400, err.code, err.message);
      this.log.error({ err }, 'launcher api: request failed');
      if (!res.headersSent) error(res, 500, 'internal', 'the launcher failed');
      else res.destroy();
    }
  }

  private state: Handler = async (_req, res) =>
    json(res, 200, { ...this.jobs.state(), deployments: this.deployments?.list() ?? [] });

  private assign: Handler = async (req, res) => {
    const parsed = Assignment.safeParse(await readBody(req));
    if (!parsed.success)
      return error(res, 400, 'invalid_assignment', parsed.error.issues[0]?.message ?? 'invalid assignment');
    json(res, 200, await this.jobs.assign(parsed.data));
  };

  private deploymentList: Handler = async (_req, res) =>
    json(res, 200, { deployments: this.deployments?.list() ?? [] });

  private deploy: Handler = async (req, res) => {
    if (this.deployments === null) return error(res, 404, 'not_found', 'this launcher runs no deployments');
    const parsed = DeploymentAssignment.safeParse(await readBody(req));
    if (!parsed.success)
      return error(res, 400, 'invalid_assignment', parsed.error.issues[0]?.message ?? 'invalid assignment');
    json(res, 200, await this.deployments.start(parsed.data));
  };

  private undeploy: Handler = async (_req, res, id) =>
    (await this.deployments?.stop(id!))
      ? json(res, 200, { stopped: true })
      : error(res, 404, 'unknown_deployment', 'no such deployment workload');

  private cancel: Handler = async (_req, res, id) =>
    (await this.jobs.cancel(id!)) ? json(res, 200, { cancelled: true }) : error(res, 404, 'unknown_job', 'no such job');

  private ack: Handler = async (_req, res, id) =>
    (await this.jobs.ack(id!)) ? json(res, 200, { removed: true }) : error(res, 404, 'unknown_job', 'no ended job');

  private logs: Handler = async (_req, res, id) => {
    const it = this.jobs.logs(id!);
    const first = await it.next();
    if (first.done) return error(res, 404, 'unknown_job', 'no such job');
    res.writeHead(200, { 'content-type': SEALED_MEDIA_TYPE });
    const write = (b: Uint8Array) =>
      new Promise<void>((resolve) => (res.write(b) ? resolve() : res.once('drain', () => resolve())));
    await write(first.value);
    res.on('close', () => void it.return(undefined));
    for await (const part of it) {
      if (res.destroyed) break;
      await write(part);
    }
    res.end();
  };
}
