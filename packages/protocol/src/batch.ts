// Coalesces the frames written in one event-loop iteration into one socket write: the first send corks the
// socket and setImmediate (the check phase, after every I/O callback and microtask of this poll phase)
// uncorks it. Small requests produce several tiny frames (head, data, end), and many client sockets become
// readable in the same poll; without this each frame was its own writev syscall, which dominated the
// profile. nextTick would be too early: it runs before the microtask that pumps DATA.

export interface Corkable {
  cork(): void;
  uncork(): void;
}

/** Holds a socket corked until the end of the current event-loop iteration. A class, not closures: the
 *  control plane keeps one per connected agent (subclassed there), and idle agents should cost little. */
export class TickBatcher {
  private corked = false;
  constructor(private readonly socket: Corkable) {}

  /** Corks the socket, once per iteration; it is uncorked in the check phase. */
  hold(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(release, this);
  }

  /** @internal */
  release(): void {
    this.corked = false;
    this.socket.uncork();
  }
}

function release(b: TickBatcher): void {
  b.release();
}

export function tickBatched<F extends (...args: never[]) => void>(socket: Corkable, send: F): F {
  const batcher = new TickBatcher(socket);
  return ((...args: Parameters<F>) => {
    batcher.hold();
    send(...args);
  }) as F;
}
