/**
 * Seeded object data without holding objects: one pool of pseudo-random bytes (AES-128-CTR
 * keystream keyed by the seed: deterministic, and fast enough not to load the client), and
 * every object is a window of it at an offset of its own, wrapping at the pool's end. PUT
 * bodies are views of the pool (no copies); a GET is compared byte for byte against the same
 * window as it streams.
 */
import { createCipheriv, createHash } from "node:crypto";
import { assert } from "../core/assert.js";
import { BODY_PIECE_BYTES, DATA_POOL_BYTES } from "./limits.js";

/** Offsets of consecutive objects: a prime, so windows start everywhere in the pool. */
const OBJECT_OFFSET_STRIDE = 1_000_003;
/** AES block: the counter (IV) is 16 bytes. */
const AES_BLOCK_BYTES = 16;

export class DataPool {
  readonly seed: number;
  readonly #pool: Buffer;

  constructor(seed: number, bytes = DATA_POOL_BYTES) {
    assert(Number.isSafeInteger(bytes) && bytes > 0, "a pool has bytes");
    this.seed = seed;
    const key = createHash("sha256").update(`tessera-bench-${seed}`).digest().subarray(0, 16);
    const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(AES_BLOCK_BYTES));
    this.#pool = cipher.update(Buffer.alloc(bytes));
  }

  /** Where object `index` starts in the pool. */
  offsetOf(index: number): number {
    return (index * OBJECT_OFFSET_STRIDE) % this.#pool.length;
  }

  /** Object `index` of `size` bytes, in views of at most BODY_PIECE_BYTES. */
  *pieces(index: number, size: number): Generator<Buffer> {
    let at = this.offsetOf(index);
    for (let left = size; left > 0; ) {
      const take = Math.min(left, BODY_PIECE_BYTES, this.#pool.length - at);
      yield this.#pool.subarray(at, at + take);
      left -= take;
      at = (at + take) % this.#pool.length;
    }
  }

  /** The whole object as one buffer: a view when it does not wrap (small objects), else a copy. */
  whole(index: number, size: number): Buffer {
    const at = this.offsetOf(index);
    if (at + size <= this.#pool.length) return this.#pool.subarray(at, at + size);
    return Buffer.concat([...this.pieces(index, size)], size);
  }

  /** A checker for object `index` of `size` bytes: feed what a GET returns, then `end()`. */
  verifier(index: number, size: number): ObjectVerifier {
    return new ObjectVerifier(this.#pool, this.offsetOf(index), size);
  }
}

/** Compares a byte stream against a window of the pool; throws at the first difference. */
export class ObjectVerifier {
  readonly #pool: Buffer;
  readonly #size: number;
  #at: number;
  #received = 0;

  constructor(pool: Buffer, offset: number, size: number) {
    this.#pool = pool;
    this.#at = offset;
    this.#size = size;
  }

  feed(bytes: Buffer): void {
    if (this.#received + bytes.length > this.#size) throw new Error(`GET returned more than the ${this.#size} bytes put`);
    for (let from = 0; from < bytes.length; ) {
      const take = Math.min(bytes.length - from, this.#pool.length - this.#at);
      const expected = this.#pool.subarray(this.#at, this.#at + take);
      if (!expected.equals(bytes.subarray(from, from + take))) {
        throw new Error(`GET returned different bytes than were put, within bytes ${this.#received + from}..${this.#received + from + take}`);
      }
      from += take;
      this.#at = (this.#at + take) % this.#pool.length;
    }
    this.#received += bytes.length;
  }

  end(): void {
    if (this.#received !== this.#size) throw new Error(`GET returned ${this.#received} of the ${this.#size} bytes put`);
  }
}
