// A small least-recently-used map: the DCAP verifier's caches are bounded so a flood of distinct quotes
// cannot grow them without limit.
export class Lru<K, V> {
  readonly #map = new Map<K, V>();
  constructor(readonly max: number) {}
  get(k: K): V | undefined {
    const v = this.#map.get(k);
    if (v !== undefined) {
      this.#map.delete(k);
      this.#map.set(k, v);
    }
    return v;
  }
  set(k: K, v: V): void {
    this.#map.delete(k);
    this.#map.set(k, v);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as K);
  }
  delete(k: K): void {
    this.#map.delete(k);
  }
  get size(): number {
    return this.#map.size;
  }
}
