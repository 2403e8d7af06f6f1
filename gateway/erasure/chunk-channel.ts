/**
 * A bounded single-producer, single-consumer queue of buffers: the encoder pushes chunk i
 * of every stripe into channel i, and the shard writer for node i iterates it. `push` waits
 * while the queue is full, which is how a slow node slows the PUT down (backpressure)
 * instead of growing gateway memory.
 */
import { assert } from "../../core/assert.js";

export class ChunkChannel implements AsyncIterable<Buffer> {
  readonly #capacity: number;
  readonly #queue: Buffer[] = [];
  #closed = false;
  #abandoned: unknown = undefined;
  #failure: { error: unknown } | undefined;
  #wakeProducer: (() => void) | undefined;
  #wakeConsumer: (() => void) | undefined;
  #iterated = false;
  #taken = 0;

  constructor(capacity: number) {
    assert(Number.isInteger(capacity) && capacity >= 1, "a channel holds at least one chunk");
    this.#capacity = capacity;
  }

  /** Chunks the consumer has taken so far. */
  get taken(): number {
    return this.#taken;
  }

  /** True once the consumer stopped (its write failed): pushes are dropped. */
  get abandoned(): boolean {
    return this.#abandoned !== undefined;
  }

  /** Queues `chunk`, waiting while the channel is full. Resolves at once if abandoned. */
  async push(chunk: Buffer): Promise<void> {
    assert(!this.#closed, "no push after close");
    while (this.#queue.length >= this.#capacity && !this.abandoned) {
      await new Promise<void>((resolve) => (this.#wakeProducer = resolve));
    }
    if (this.abandoned) return;
    this.#queue.push(chunk);
    this.#wake("consumer");
  }

  /** No more chunks: the consumer's iteration ends after the queued ones. */
  close(): void {
    this.#closed = true;
    this.#wake("consumer");
  }

  /**
   * The producer failed (the client's body broke): the consumer's iteration throws, so the
   * shard is never completed and the node discards it.
   */
  fail(error: unknown): void {
    this.#failure = { error };
    this.#closed = true;
    this.#queue.length = 0;
    this.#wake("consumer");
  }

  /** The consumer gives up (its write failed): release the producer, drop the queue. */
  abandon(reason: unknown): void {
    this.#abandoned = reason ?? new Error("channel abandoned");
    this.#queue.length = 0;
    this.#wake("producer");
  }

  #wake(side: "producer" | "consumer"): void {
    const wake = side === "producer" ? this.#wakeProducer : this.#wakeConsumer;
    if (side === "producer") this.#wakeProducer = undefined;
    else this.#wakeConsumer = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    assert(!this.#iterated, "a channel has one consumer");
    this.#iterated = true;
    try {
      for (;;) {
        if (this.#failure !== undefined) throw this.#failure.error;
        const chunk = this.#queue.shift();
        if (chunk !== undefined) {
          this.#taken += 1;
          this.#wake("producer");
          yield chunk;
        } else if (this.#closed || this.abandoned) {
          return;
        } else {
          await new Promise<void>((resolve) => (this.#wakeConsumer = resolve));
        }
      }
    } finally {
      // A consumer that stops early (error, return) must never leave the producer waiting.
      if (!this.#closed || this.#queue.length > 0) this.abandon(this.#abandoned ?? new Error("consumer stopped"));
    }
  }
}
