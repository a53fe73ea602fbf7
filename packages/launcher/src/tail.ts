// The last `max_bytes` of a stream, in bounded memory: chunks are kept until they exceed the bound, then the
// oldest are dropped (the first kept chunk is trimmed when the tail is read).
import assert from 'node:assert/strict';

export class TailBuffer {
  private chunks: Buffer[] = [];
  private kept_bytes = 0;
  /** Everything written, including what was dropped. */
  total_bytes = 0;

  constructor(readonly max_bytes: number) {
    assert(Number.isInteger(max_bytes) && max_bytes > 0, 'a tail keeps at least one byte');
  }

  write(chunk: Buffer): void {
    this.total_bytes += chunk.length;
    if (chunk.length >= this.max_bytes) {
      this.chunks = [chunk.subarray(chunk.length - this.max_bytes)];
      this.kept_bytes = this.max_bytes;
      return;
    }
    this.chunks.push(chunk);
    this.kept_bytes += chunk.length;
    while (this.kept_bytes - this.chunks[0]!.length >= this.max_bytes) this.kept_bytes -= this.chunks.shift()!.length;
  }

  get truncated(): boolean {
    return this.total_bytes > this.max_bytes;
  }

  /** At most max_bytes: the end of what was written. */
  tail(): Buffer {
    const all = Buffer.concat(this.chunks);
    return all.length > this.max_bytes ? all.subarray(all.length - this.max_bytes) : all;
  }
}
