/**
 * The healer's bandwidth limit: a token bucket over shard bytes read (rebuild sources, moves,
 * scrubbing), adjustable at run time. A rate of 0 lets everything through at once.
 */
import { assert } from "../../core/assert.js";
import { THROTTLE_BURST_BYTES } from "./limits.js";

export class Throttle {
  #bytesPerSecond: number;
  #tokens: number;
  #updatedAt: number;
  readonly #now: () => number;

  constructor(bytesPerSecond: number, now: () => number = Date.now) {
    assert(Number.isSafeInteger(bytesPerSecond) && bytesPerSecond >= 0, "a validated rate");
    this.#bytesPerSecond = bytesPerSecond;
    this.#now = now;
    this.#tokens = THROTTLE_BURST_BYTES;
    this.#updatedAt = now();
  }

  get bytesPerSecond(): number {
    return this.#bytesPerSecond;
  }

  set bytesPerSecond(rate: number) {
    assert(Number.isSafeInteger(rate) && rate >= 0, "a validated rate");
    this.#refill();
    this.#bytesPerSecond = rate;
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(THROTTLE_BURST_BYTES, this.#tokens + ((now - this.#updatedAt) * this.#bytesPerSecond) / 1000);
    this.#updatedAt = now;
  }

  /** Waits until `bytes` may pass. Pieces larger than the burst pass once the bucket is full. */
  async take(bytes: number): Promise<void> {
    for (;;) {
      if (this.#bytesPerSecond === 0) return;
      this.#refill();
      const need = Math.min(bytes, THROTTLE_BURST_BYTES);
      if (this.#tokens >= need) {
        this.#tokens -= bytes;
        return;
      }
      const waitMs = Math.ceil(((need - this.#tokens) * 1000) / this.#bytesPerSecond);
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, waitMs)));
    }
  }

  /** `source`, with each piece let through only when the limit allows. */
  async *pace(source: AsyncIterable<Buffer>, counted?: (bytes: number) => void): AsyncGenerator<Buffer> {
    for await (const piece of source) {
      await this.take(piece.length);
      counted?.(piece.length);
      yield piece;
    }
  }
}
