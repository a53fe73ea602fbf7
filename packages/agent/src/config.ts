// The agent's environment: the seed's variables plus a few of ours, validated; errors name the variable.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AgentId, AppName, RepoName } from '@easyenclave/protocol';
import { DEFAULT_TSM_REPORT_PATH } from '@easyenclave/attestation';
import { OPS_DEFAULT_BIND } from '@easyenclave/protocol/ops/server';
import { UNIT_KINDS, UnitPrices } from '@easyenclave/protocol/receipt';

export interface AgentConfig {
  control_ws: string;
  repo: string;
  release_tag: string;
  app_name: string;
  network: string;
  backend_url: string;
  agent_id: string;
  /** Where a generated agent id is kept between runs. */
  state_dir: string;
  health_interval_ms: number;
  /** When set, health is an HTTP GET of this path (status < 500 passes); otherwise a TCP connect. */
  health_path: string | null;
  /** EE_NODE_TOKEN: the market node this agent runs on (sandbox networks; docs/market.md). */
  node_token?: string;
  drain_timeout_ms: number;
  max_streams: number;
  log_level: string;
  /** configfs-tsm report directory (EE_TSM_PATH): present on TDX guests. Default /sys/kernel/config/tsm/report. */
  tsm_path?: string;
  /** EE_METRICS_PORT: the operations port (GET /metrics, GET /ready); null (unset) = off, 0 = any free port. */
  metrics_port?: number | null;
  /** EE_METRICS_BIND: its address; loopback by default (the endpoints are not authenticated). */
  metrics_bind?: string;
  /** EE_UNIT_PRICES: the node's posted prices for sealed traffic (micro-USD per 1,000 units); with them the
   *  agent signs a usage receipt for each sealed request made under a reservation. */
  unit_prices: UnitPrices | null;
}

/** `tokens_in=150,tokens_out=600,requests=1000,bytes=1`: every kind once, integers. */
export function parseUnitPrices(v: string | undefined): UnitPrices | null {
  if (v === undefined) return null;
  const out: Record<string, number> = {};
  for (const part of v.split(',')) {
    const m = /^\s*([a-z_]+)\s*=\s*(\d{1,10})\s*$/.exec(part);
    if (!m || !(UNIT_KINDS as readonly string[]).includes(m[1]!) || m[1]! in out)
      throw new AgentConfigError('EE_UNIT_PRICES', `must be ${UNIT_KINDS.map((k) => `${k}=N`).join(',')}, got "${v}"`);
    out[m[1]!] = Number(m[2]);
  }
  const r = UnitPrices.safeParse(out);
  if (!r.success) throw new AgentConfigError('EE_UNIT_PRICES', `needs all of ${UNIT_KINDS.join(', ')} within range`);
  return r.data;
}

export class AgentConfigError extends Error {
  override readonly name = 'AgentConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable} ${message}`);
  }
}

type Env = Record<string, string | undefined>;

function get(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function required(env: Env, name: string): string {
  const v = get(env, name);
  if (v === undefined) throw new AgentConfigError(name, 'is required');
  return v;
}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const v = get(env, name);
  if (v === undefined) return def;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
    throw new AgentConfigError(name, `must be an integer from ${min} to ${max}, got "${v}"`);
  return Number(v);
}

function url(env: Env, name: string, protocols: string[]): string {
  const v = required(env, name);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new AgentConfigError(name, `must be a URL, got "${v}"`);
  }
  if (!protocols.includes(u.protocol))
    throw new AgentConfigError(name, `must use ${protocols.join(' or ')}, got "${u.protocol}"`);
  return v;
}

function checked(
  name: string,
  value: string,
  schema: { safeParse(v: unknown): { success: boolean; error?: { issues: Array<{ message: string }> } } },
): string {
  const r = schema.safeParse(value);
  if (!r.success) throw new AgentConfigError(name, `is invalid: ${r.error?.issues[0]?.message ?? 'bad value'}`);
  return value;
}

/** Reads EE_AGENT_ID, or the id kept in the state dir, or generates and keeps a new one. */
export function resolveAgentId(env: Env, app_name: string, state_dir: string): string {
  const given = get(env, 'EE_AGENT_ID');
  if (given !== undefined) return checked('EE_AGENT_ID', given, AgentId);
  const file = join(state_dir, `${app_name}.agent-id`);
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (AgentId.safeParse(kept).success) return kept;
  } catch {
    // no id kept yet
  }
  const id = randomUUID();
  mkdirSync(state_dir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return id;
}

function tsmPath(env: Env): string {
  const v = get(env, 'EE_TSM_PATH') ?? DEFAULT_TSM_REPORT_PATH;
  if (!v.startsWith('/')) throw new AgentConfigError('EE_TSM_PATH', `must be an absolute path, got "${v}"`);
  return v;
}

export function loadAgentConfig(env: Env): AgentConfig {
  const app_name = checked('EE_APP_NAME', required(env, 'EE_APP_NAME'), AppName);
  const state_dir = get(env, 'EE_AGENT_STATE_DIR') ?? join(homedir(), '.easyenclave', 'agent');
  const health_path = get(env, 'EE_HEALTH_PATH') ?? null;
  if (health_path !== null && !health_path.startsWith('/'))
    throw new AgentConfigError('EE_HEALTH_PATH', `must start with "/", got "${health_path}"`);
  return {
    control_ws: url(env, 'EE_CONTROL_WS', ['ws:', 'wss:']),
    repo: checked('EE_REPO', required(env, 'EE_REPO'), RepoName),
    release_tag: required(env, 'EE_RELEASE_TAG'),
    app_name,
    network: required(env, 'EE_NETWORK'),
    backend_url: url(env, 'EE_BACKEND_URL', ['http:', 'https:']),
    agent_id: resolveAgentId(env, app_name, state_dir),
    state_dir,
    health_interval_ms: int(env, 'EE_HEALTH_INTERVAL_SEC', 10, 1, 3600) * 1000,
    health_path,
    ...(get(env, 'EE_NODE_TOKEN') !== undefined ? { node_token: get(env, 'EE_NODE_TOKEN')! } : {}),
    drain_timeout_ms: int(env, 'EE_DRAIN_TIMEOUT_SEC', 30, 0, 3600) * 1000,
    max_streams: int(env, 'EE_MAX_STREAMS', 256, 1, 65535),
    metrics_port: get(env, 'EE_METRICS_PORT') === undefined ? null : int(env, 'EE_METRICS_PORT', 0, 0, 65535),
    metrics_bind: get(env, 'EE_METRICS_BIND') ?? OPS_DEFAULT_BIND,
    log_level: get(env, 'EE_LOG_LEVEL') ?? 'info',
    unit_prices: parseUnitPrices(get(env, 'EE_UNIT_PRICES')),
    tsm_path: tsmPath(env),
  };
}
