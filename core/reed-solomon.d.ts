/**
 * Types for the native addon @ronomon/reed-solomon 6.x (it ships none). Only core/codec.ts
 * loads it; everything else goes through ErasureCodec. Facts from its binding.c that the
 * types cannot say: create() rejects m < 1; encode() throws synchronously on bad arguments
 * and calls `end` with no arguments once the work is done in the libuv threadpool; it writes
 * every shard that is not a source (not only the targets), so non-source regions are output.
 */
declare module "@ronomon/reed-solomon" {
  /** Opaque encoding matrix for one (k, m); safe to share between concurrent encodes. */
  export type ReedSolomonContext = Buffer;

  export const MAX_K: number;
  export const MAX_M: number;

  export function create(k: number, m: number): ReedSolomonContext;

  /**
   * Computes the `targets` shards from the `sources` shards (bitmasks over 0..k+m-1).
   * Data shards 0..k-1 lie contiguously in buffer[bufferOffset, +bufferSize), parity shards
   * k..k+m-1 in parity[parityOffset, +paritySize); bufferSize / k === paritySize / m, a
   * multiple of 8.
   */
  export function encode(
    context: ReedSolomonContext,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    end: (error?: Error) => void,
  ): void;
}
