// The proxy's HTTP answer to each routing refusal of the tunnel (tunnel/router.ts), through the one error
// catalogue: the router names a reason, this says status, code, message and Retry-After once.
import type { ApiError } from '../http-errors.js';
import { ApiFailure, type ErrorCode } from '../http/error-catalogue.js';
import type { UpgradeRefusal } from '../tunnel/hub.js';
import type { Refused, RouteRefusal } from '../tunnel/router.js';

const ANSWERS: Record<
  RouteRefusal,
  { code: ErrorCode; message: (app: string) => string; retry_after_s?: number; status?: number }
> = {
  unknown_app: { code: 'unknown_app', message: (app) => `no app named "${app}"` },
  expired: { code: 'registration_expired', message: (app) => `the registration of "${app}" has expired` },
  offline: { code: 'no_agent', message: (app) => `no agent of "${app}" is connected`, retry_after_s: 5 },
  draining: { code: 'agent_draining', message: (app) => `the agents of "${app}" are draining`, retry_after_s: 1 },
  unhealthy: {
    code: 'unhealthy',
    message: (app) => `no agent of "${app}" is passing health checks`,
    retry_after_s: 5,
  },
  unattested: { code: 'not_attested', message: (app) => `no agent of "${app}" holds a valid attestation` },
  no_eligible_node: {
    code: 'no_eligible_node',
    message: (app) => `no agent of "${app}" runs on an eligible node`,
    retry_after_s: 5,
    status: 503,
  },
  at_stream_limit: {
    code: 'agent_overloaded',
    message: () => 'all agents are at their stream limit',
    retry_after_s: 1,
  },
  no_other_agent: {
    code: 'agent_overloaded',
    message: () => 'no other agent could take the request',
    retry_after_s: 1,
  },
  shutting_down: { code: 'shutting_down', message: () => 'control plane is shutting down', retry_after_s: 1 },
};

export function refusalError(r: Refused): ApiError {
  const a = ANSWERS[r.refused];
  const f = ApiFailure.of(a.code, a.message(r.app_name), a.status === undefined ? {} : { status: a.status });
  return {
    status: f.status,
    code: f.code,
    message: f.message,
    ...(a.retry_after_s === undefined ? {} : { retry_after_s: a.retry_after_s }),
  };
}

/** The answer to a refused upgrade on /v1/tunnel. */
export function upgradeRefusalError(r: UpgradeRefusal): ApiError {
  const f = ApiFailure.of(
    r,
    r === 'draining' ? 'control plane is shutting down' : 'too many agents connecting at once',
  );
  return { status: f.status, code: f.code, message: f.message, retry_after_s: 1 };
}
