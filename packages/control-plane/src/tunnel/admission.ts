// Admission to the tunnel: the caps on links still in their handshake, in all and per remote address. A link
// counts from its upgrade until the end of its first attestation: the register deadline, the attestation
// deadline or its close ends it (the hub calls end()). Pure bookkeeping; the hub answers the refusals.
import type { ControlPlaneConfig } from '../config.js';

/** Why an upgrade on /v1/tunnel is refused (the server answers it in HTTP, proxy/refusals.ts). */
export type UpgradeRefusal = 'draining' | 'too_many_handshakes';

export class HandshakeCaps {
  #total = 0;
  readonly #byAddr = new Map<string, number>();

  /** The caps are read at each check (from the configuration in force). */
  constructor(private readonly config: Pick<ControlPlaneConfig, 'max_handshakes' | 'max_handshakes_per_address'>) {}

  /** True when a new handshake from `addr` would exceed a cap. */
  full(addr: string): boolean {
    const { max_handshakes, max_handshakes_per_address } = this.config;
    return this.#total >= max_handshakes || (this.#byAddr.get(addr) ?? 0) >= max_handshakes_per_address;
  }

  begin(addr: string): void {
    this.#total++;
    this.#byAddr.set(addr, (this.#byAddr.get(addr) ?? 0) + 1);
  }

  end(addr: string): void {
    this.#total--;
    const n = (this.#byAddr.get(addr) ?? 0) - 1;
    if (n > 0) this.#byAddr.set(addr, n);
    else this.#byAddr.delete(addr);
  }
}
