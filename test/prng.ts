/**
 * Seeded PRNG for tests (never Math.random): mulberry32. Every test that uses it prints
 * its seed on failure through `describeSeed`, so a failure can be replayed with TEST_SEED.
 */
export function seedFromEnv(fallback: number): number {
  const fromEnv = process.env.TEST_SEED;
  if (fromEnv === undefined || fromEnv === "") return fallback;
  const seed = Number(fromEnv);
  if (!Number.isInteger(seed)) throw new Error(`TEST_SEED must be an integer, got ${fromEnv}`);
  return seed;
}

export class Prng {
  #state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [min, max] inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let i = 0;
    for (; i + 4 <= length; i += 4) out.writeUInt32LE(this.nextUint32(), i);
    for (; i < length; i++) out[i] = this.nextUint32() & 0xff;
    return out;
  }
}
