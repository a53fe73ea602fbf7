// What the machine offers and what running workloads hold. Pure bookkeeping: the runtime reserves before it
// starts a container and releases when the container exits.
import assert from 'node:assert/strict';
import os from 'node:os';
import { RESERVED_MEMORY_MIB } from './limits.js';

export interface Capacity {
  vcpus: number;
  memory_mib: number;
}

export interface CapacitySnapshot {
  total: Capacity;
  allocated: Capacity;
  free: Capacity;
  workloads: number;
}

const MIB = 1024 * 1024;

/** The machine: its logical CPUs, and its memory less what the launcher, agents and podman keep. */
export function detectCapacity(): Capacity {
  return {
    vcpus: os.availableParallelism(),
    memory_mib: Math.max(0, Math.floor(os.totalmem() / MIB) - RESERVED_MEMORY_MIB),
  };
}

export class CapacityLedger {
  private readonly held = new Map<string, Capacity>();
  private readonly allocated: Capacity = { vcpus: 0, memory_mib: 0 };

  constructor(readonly total: Capacity) {
    assert(Number.isInteger(total.vcpus) && total.vcpus >= 0, 'vcpus must be a non-negative integer');
    assert(Number.isInteger(total.memory_mib) && total.memory_mib >= 0, 'memory_mib must be a non-negative integer');
  }

  fits(need: Capacity): boolean {
    return (
      this.allocated.vcpus + need.vcpus <= this.total.vcpus &&
      this.allocated.memory_mib + need.memory_mib <= this.total.memory_mib
    );
  }

  /** Holds `need` for `id` when it fits; false (and nothing held) when it does not. */
  reserve(id: string, need: Capacity): boolean {
    assert(!this.held.has(id), `capacity already held for ${id}`);
    if (!this.fits(need)) return false;
    this.hold(id, need);
    return true;
  }

  /** Records a workload that already runs (found after a restart), even past the total: it is there. */
  adopt(id: string, need: Capacity): void {
    if (!this.held.has(id)) this.hold(id, need);
  }

  /** Idempotent: releasing twice, or what was never held, changes nothing. */
  release(id: string): void {
    const c = this.held.get(id);
    if (c === undefined) return;
    this.held.delete(id);
    this.allocated.vcpus -= c.vcpus;
    this.allocated.memory_mib -= c.memory_mib;
    assert(this.allocated.vcpus >= 0 && this.allocated.memory_mib >= 0, 'capacity released below zero');
  }

  snapshot(): CapacitySnapshot {
    const free = {
      vcpus: Math.max(0, this.total.vcpus - this.allocated.vcpus),
      memory_mib: Math.max(0, this.total.memory_mib - this.allocated.memory_mib),
    };
    return { total: { ...this.total }, allocated: { ...this.allocated }, free, workloads: this.held.size };
  }

  private hold(id: string, need: Capacity): void {
    assert(Number.isInteger(need.vcpus) && need.vcpus > 0, 'a workload holds at least one vCPU');
    assert(Number.isInteger(need.memory_mib) && need.memory_mib > 0, 'a workload holds some memory');
    this.held.set(id, { ...need });
    this.allocated.vcpus += need.vcpus;
    this.allocated.memory_mib += need.memory_mib;
  }
}
