// Explicit limits of the tunnel protocol. Every queue, window and message has a bound (TIGER_STYLE):
// a peer that exceeds one is a protocol violation, never a reason to grow memory.

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** Largest DATA payload a sender puts in one frame. Queued chunks are coalesced up to this size (the frame
 *  is a copy anyway), which divides the per-frame cost of bulk transfers; 256 KiB is a quarter of a stream
 *  window and ~0.25 ms of wire time at 1 GB/s, so small streams still interleave promptly. */
export const MAX_DATA_FRAME_BYTES = 256 * KiB;
/** Largest encoded HEADERS/TRAILERS payload (JSON head). The HTTP header block itself is capped lower. */
export const MAX_HEAD_FRAME_BYTES = 32 * KiB;
/** Largest JSON control message (text frame): an attest_response carries a quote with its certificate chain. */
export const MAX_CONTROL_MESSAGE_BYTES = 48 * KiB;
/** Largest WebSocket message either side accepts; anything bigger closes the connection (ws code 1009). */
export const MAX_WS_MESSAGE_BYTES = MAX_DATA_FRAME_BYTES + 64;

/** Initial credit a receiver grants per stream and per connection; credit returns as data is consumed. */
export const INITIAL_STREAM_WINDOW_BYTES = 1 * MiB;
export const INITIAL_CONNECTION_WINDOW_BYTES = 16 * MiB;
/** Largest window a peer may accumulate (guards against WINDOW_UPDATE overflow, as in HTTP/2). */
export const MAX_WINDOW_BYTES = 2 ** 31 - 1;

/** A sender stops writing DATA while this many bytes sit unflushed in the socket. */
export const SOCKET_HIGH_WATER_BYTES = 1 * MiB;
/** Per-stream outbound queue above which `write()` asks the producer to pause. */
export const STREAM_QUEUE_HIGH_WATER_BYTES = 256 * KiB;

/** Request target (path and query) a proxied request may carry; the control plane answers 414 above it. */
export const MAX_REQUEST_PATH_BYTES = 8 * KiB;
/** HTTP header block (names + values) a proxied request or response may carry. */
export const DEFAULT_MAX_HEADER_BYTES = 16 * KiB;
export const MAX_HEADER_COUNT = 256;
/** Concurrent streams on one agent connection; excess requests queue briefly on the control plane, then 503. */
export const DEFAULT_MAX_STREAMS = 256;
/** Largest stream id before a connection must be replaced (ids are never reused). */
export const MAX_STREAM_ID = 2 ** 31 - 1;

/** Liveness: ping when idle, declare the peer dead after this much silence. */
export const PING_INTERVAL_MS = 10_000;
export const DEAD_AFTER_MS = 25_000;

/** Reconnect backoff (full jitter): base, cap, and how long a connection must live to reset the attempt count. */
export const RECONNECT_BASE_MS = 250;
// 2 s rather than the 5 s cap the design started from (docs/design.md §2): after a control-plane restart every agent must be back
// within 5 s, and a refused dial is cheap (a RST on loopback, a SYN across the internet).
export const RECONNECT_CAP_MS = 2_000;
export const RECONNECT_RESET_AFTER_MS = 30_000;

/** Timeouts for proxied requests (defaults; the control plane's config may override). */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 60_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** The agent gives up on its backend this much before the control plane's deadline so it can name the cause. */
export const BACKEND_DEADLINE_MARGIN_MS = 250;
/** Graceful shutdown: how long in-flight streams may run after GOAWAY. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
