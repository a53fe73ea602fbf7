// The runtime's errors: a code the assignment layer maps to what it reports (never an HTTP status here).

export type RuntimeErrorCode =
  | 'invalid_spec' // the assignment's spec is refused (limits, names)
  | 'image_not_found' // no local image by that name (nothing is ever pulled)
  | 'insufficient_capacity' // the workload does not fit in the vCPUs or memory still free
  | 'already_exists' // a workload with this id is known (or its container exists)
  | 'unknown_workload'
  | 'runtime_failed'; // podman failed, timed out or answered something unexpected

export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
  ) {
    super(message);
  }
}
