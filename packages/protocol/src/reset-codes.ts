// Stream reset codes and what each means to the HTTP caller. A reset carries one code and a short reason.
// `retryable` means the request certainly never reached a backend, so another agent may take it.

export const ResetCode = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  /** The agent refused the stream before touching the backend (stream limit). */
  REFUSED_STREAM: 4,
  /** The other side gave up (client disconnected, caller aborted). */
  CANCEL: 5,
  /** The agent could not connect to its backend: nothing was sent. */
  BACKEND_UNREACHABLE: 6,
  /** The backend did not answer in time. */
  BACKEND_TIMEOUT: 7,
  /** The backend failed after the request was (maybe) delivered: connection reset, malformed response. */
  BACKEND_ERROR: 8,
  /** A body exceeded the configured limit. */
  TOO_LARGE: 9,
  /** The agent is draining (GOAWAY) and takes no new streams. */
  DRAINING: 10,
  /** The header block exceeded its limit. */
  HEADERS_TOO_LARGE: 11,
  /** No data moved for longer than the idle timeout. */
  IDLE_TIMEOUT: 12,
} as const;
export type ResetCode = (typeof ResetCode)[keyof typeof ResetCode];

const NAMES = new Map<number, string>(Object.entries(ResetCode).map(([k, v]) => [v, k]));

export function resetCodeName(code: number): string {
  return NAMES.get(code) ?? `UNKNOWN_${code}`;
}

export interface HttpMapping {
  status: number;
  code: string;
  retryable: boolean;
}

/** How a reset received before response headers surfaces to the HTTP client. */
export function resetToHttp(code: number): HttpMapping {
  switch (code) {
    case ResetCode.REFUSED_STREAM:
      return { status: 503, code: 'agent_overloaded', retryable: true };
    case ResetCode.DRAINING:
      return { status: 503, code: 'agent_draining', retryable: true };
    case ResetCode.BACKEND_UNREACHABLE:
      return { status: 502, code: 'backend_unreachable', retryable: true };
    case ResetCode.BACKEND_TIMEOUT:
      return { status: 504, code: 'backend_timeout', retryable: false };
    case ResetCode.IDLE_TIMEOUT:
      return { status: 504, code: 'idle_timeout', retryable: false };
    case ResetCode.TOO_LARGE:
      return { status: 413, code: 'body_too_large', retryable: false };
    case ResetCode.HEADERS_TOO_LARGE:
      return { status: 431, code: 'headers_too_large', retryable: false };
    case ResetCode.BACKEND_ERROR:
      return { status: 502, code: 'backend_error', retryable: false };
    default:
      return { status: 502, code: 'tunnel_error', retryable: false };
  }
}
