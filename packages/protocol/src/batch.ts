// Coalesces the frames written in one event-loop iteration into one socket write: the first send corks the
// socket and setImmediate (the check phase, after every I/O callback and microtask of this poll phase)
// uncorks it. Small requests produce several tiny frames (head, data, end), and many client sockets become
// readable in the same poll; without this each frame was its own writev syscall, which dominated the
// profile. nextTick would be too early: it runs before the microtask that pumps DATA.

export interface Corkable {
  cork(): void;
  uncork(): void;
}

export function tickBatched<F extends (...args: never[]) => void>(socket: Corkable, send: F): F {
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  return ((...args: Parameters<F>) => {
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    send(...args);
  }) as F;
}
