/**
 * The erasure codec: k data chunks in, m parity chunks out, and any k of the k+m chunks
 * give back the rest. A thin typed wrapper over the native addon @ronomon/reed-solomon
 * (Cauchy Reed-Solomon; the work runs in the libuv threadpool, never on the event loop).
 *
 * The addon's parity depends on the chunk size (it splits each chunk into sub-blocks whose
 * size follows from k and the chunk size), so an object's chunk size is fixed for its life,
 * and the addon's exact output is pinned by golden vectors (core/codec-self-test.ts).
 *
 * Buffers passed to the codec must not be modified until its promise settles: the addon
 * reads and writes them from another thread.
 */
import { createRequire } from "node:module";
import type * as ReedSolomon from "@ronomon/reed-solomon";
import { AssertionError, assert } from "./assert.js";
import { requireArgument } from "./errors.js";
import { BLOCK_BYTES_MAX, CHUNK_ALIGN_BYTES, EC_K_MAX, EC_M_MAX } from "./limits.js";

// The addon's package "main" is a .node file, which ESM `import` cannot load.
const require = createRequire(import.meta.url);
const addon = require("@ronomon/reed-solomon") as typeof ReedSolomon;

/**
 * Largest chunk the codec accepts: a whole stripe at k = 1. Bounds the scratch memory of a
 * reconstruct ((k+m) chunks) and keeps every buffer handed to the addon far below its 32-bit
 * size fields (it aborts the process, rather than throwing, on a buffer over 4 GiB).
 */
export const CODEC_CHUNK_BYTES_MAX = BLOCK_BYTES_MAX;

/**
 * Stripes up to this size get their parity computed right here, in JavaScript, with the
 * addon's own bit matrix and sub-block layout (identical bytes; the golden vectors check both
 * paths at start-up): handing a few KiB to the threadpool and back (a work item, four
 * references, a thread wake-up, a completion callback) costs the event loop more than the
 * XORs. Measured at 4+2, one core, total CPU per stripe: 4 KiB 6 µs here vs 12 µs through
 * the addon; 16 KiB 17-18 µs vs 13 µs; 64 KiB 62 µs vs 18 µs. Under load the addon's
 * wake-ups cost more (the PUT 4 KiB profile: 5% of the gateway in that call), so the
 * crossover sits at 16 KiB: the XOR never holds the loop for more than about 20 µs.
 */
export const CODEC_EVENT_LOOP_STRIPE_BYTES_MAX = 16 * 1024;

assert(addon.MAX_K === EC_K_MAX && addon.MAX_M === EC_M_MAX, "limits.ts matches the addon's MAX_K and MAX_M");
assert(CODEC_CHUNK_BYTES_MAX % CHUNK_ALIGN_BYTES === 0, "the largest chunk is itself aligned");
assert(CODEC_CHUNK_BYTES_MAX * Math.max(EC_K_MAX, EC_M_MAX) < 2 ** 32, "addon buffers fit its 32-bit sizes");

export interface ErasureCodecOptions {
  /** Data chunks per stripe, 1..EC_K_MAX. */
  readonly k: number;
  /** Parity chunks per stripe, 0..EC_M_MAX; 0 means no redundancy (encode returns nothing). */
  readonly m: number;
}

/** Encoding matrices by "k+m": building one is cheap but not free, and they are immutable. */
const contexts = new Map<string, ReedSolomon.ReedSolomonContext>();

function contextFor(k: number, m: number): ReedSolomon.ReedSolomonContext {
  const key = `${k}+${m}`;
  let context = contexts.get(key);
  if (context === undefined) {
    context = addon.create(k, m);
    contexts.set(key, context);
  }
  assert(Buffer.isBuffer(context), "the addon's context is a Buffer");
  return context;
}

/**
 * Memory for reconstruct to reuse from one stripe to the next (createScratch): the layout the
 * addon needs, one stripe of k data chunks and m parity chunks of one chunk size.
 */
export interface ReconstructScratch {
  readonly stripe: Buffer;
  readonly parity: Buffer;
}

export class ErasureCodec {
  readonly k: number;
  readonly m: number;
  /** Absent when m = 0: the addon refuses m < 1, and there is nothing to compute. */
  readonly #context: ReedSolomon.ReedSolomonContext | undefined;

  constructor(options: ErasureCodecOptions) {
    requireArgument(
      typeof options === "object" && options !== null,
      "options",
      `expected an object {k, m}, got ${describeValue(options)}`,
    );
    requireIntegerIn(options.k, "k", 1, EC_K_MAX);
    requireIntegerIn(options.m, "m", 0, EC_M_MAX);
    this.k = options.k;
    this.m = options.m;
    this.#context = this.m === 0 ? undefined : contextFor(this.k, this.m);
  }

  /** k + m: the length of a full set of chunks, and the number of shards of an object. */
  get shardCount(): number {
    return this.k + this.m;
  }

  /**
   * The m parity chunks of the k data chunks `data` (equal lengths, a multiple of 8 bytes),
   * as views into one new buffer. No copy of the data when its chunks are adjacent views of
   * one buffer (as splitChunks makes); otherwise one copy to make them contiguous.
   */
  async encode(data: readonly Buffer[]): Promise<Buffer[]> {
    requireArgument(Array.isArray(data), "data", `expected an array of chunks, got ${describeValue(data)}`);
    requireArgument(data.length === this.k, "data", `expected k = ${this.k} chunks, got ${data.length}`);
    const chunkBytes = requireEqualChunks(data, "data", { missingAllowed: false });
    assert(chunkBytes !== undefined, "k >= 1 chunks are all present");
    const parity = Buffer.allocUnsafe(this.m * chunkBytes);
    await this.#encodeParity(contiguousView(data, chunkBytes), parity);
    return splitChunks(parity, chunkBytes);
  }

  /**
   * The parity of one contiguous stripe of k chunks (stripe.length = k * chunkBytes), written
   * into `parity` (m * chunkBytes, e.g. reused from the previous stripe) or a new buffer, and
   * returned. Neither buffer is copied. Use splitChunks for per-chunk views.
   */
  async encodeStripe(stripe: Buffer, parity?: Buffer): Promise<Buffer> {
    const chunkBytes = this.#requireStripe(stripe);
    const output = parity ?? Buffer.allocUnsafe(this.m * chunkBytes);
    requireArgument(Buffer.isBuffer(output), "parity", `expected a Buffer, got ${describeValue(output)}`);
    requireArgument(
      output.length === this.m * chunkBytes,
      "parity",
      `expected m * chunkBytes = ${this.m * chunkBytes} bytes, got ${output.length}`,
    );
    requireArgument(!overlaps(stripe, output), "parity", "must not overlap stripe");
    await this.#encodeParity(stripe, output);
    return output;
  }

  /**
   * Scratch memory for reconstructing chunks of `chunkBytes` (1.5 stripes at 4+2), to pass to
   * every reconstruct of one reader instead of allocating it anew per stripe.
   */
  createScratch(chunkBytes: number): ReconstructScratch {
    requireArgument(Number.isSafeInteger(chunkBytes), "chunkBytes", `expected an integer, got ${describeValue(chunkBytes)}`);
    requireChunkBytes(chunkBytes, "chunkBytes");
    return { stripe: Buffer.allocUnsafe(this.k * chunkBytes), parity: Buffer.allocUnsafe(this.m * chunkBytes) };
  }

  /**
   * The chunks at the indexes `want` (default: all k+m, in order), computing those missing
   * from the others. `chunks` has k+m entries, undefined where a chunk is lost; at most m may
   * be lost. Present chunks are returned as given (not copied); computed ones are views into
   * one new scratch buffer, or into `scratch` (createScratch, same chunk size) when given:
   * then they are valid only until that scratch is used again, and one scratch must not serve
   * two reconstructs at once. `chunks` itself is never modified.
   */
  async reconstruct(chunks: readonly (Buffer | undefined)[], want?: readonly number[], scratch?: ReconstructScratch): Promise<Buffer[]> {
    const chunkBytes = this.#requireChunkSet(chunks);
    const wanted = want === undefined ? indexesBelow(this.shardCount) : this.#requireWant(want);
    const targets = wanted.filter((index) => chunks[index] === undefined);
    if (targets.length === 0) return wanted.map((index) => presentChunk(chunks, index));
    assert(this.#context !== undefined, "m >= 1 when a chunk is missing and accepted");
    if (scratch !== undefined) this.#requireScratch(scratch, chunkBytes, chunks);

    // The addon needs exactly the layout of a stripe: data chunks contiguous, parity
    // contiguous. k sources suffice; taking the first k present prefers data chunks, which
    // lets the addon use its XOR fast path when one data chunk is lost.
    const sources = indexesBelow(this.shardCount)
      .filter((index) => chunks[index] !== undefined)
      .slice(0, this.k);
    const place = scratch ?? this.createScratch(chunkBytes);
    for (const index of sources) presentChunk(chunks, index).copy(this.scratchChunk(place, index));
    await this.#reconstructPlaced(place, sources, targets);
    const result = wanted.map((index) => chunks[index] ?? this.scratchChunk(place, index));
    assert(result.every((chunk) => chunk.length === chunkBytes), "every returned chunk has the set's size");
    return result;
  }

  /** Chunk `index` of a scratch (createScratch's layout): data chunks in `stripe`, parity in `parity`. */
  scratchChunk(scratch: ReconstructScratch, index: number): Buffer {
    requireIntegerIn(index, "index", 0, this.shardCount - 1);
    const chunkBytes = scratch.stripe.length / this.k;
    return index < this.k ? chunkView(scratch.stripe, index, chunkBytes) : chunkView(scratch.parity, index - this.k, chunkBytes);
  }

  /**
   * Computes the chunks at `targets` in place, in a scratch whose chunks at `sources` (exactly
   * k indexes) the caller has already filled (scratchChunk). For a reader that has its chunks
   * in pieces: one copy of each into place, instead of joining it first and reconstruct
   * copying the join. At most m targets, none of them a source.
   */
  async reconstructInPlace(scratch: ReconstructScratch, sources: readonly number[], targets: readonly number[]): Promise<void> {
    requireArgument(Buffer.isBuffer(scratch.stripe) && Buffer.isBuffer(scratch.parity), "scratch", `expected {stripe, parity} Buffers, got ${describeValue(scratch)}`);
    const chunkBytes = scratch.stripe.length / this.k;
    requireArgument(Number.isInteger(chunkBytes) && scratch.parity.length === this.m * chunkBytes, "scratch", "expected createScratch's layout: k and m chunks of one size");
    requireChunkBytes(chunkBytes, "scratch");
    const sourceSet = new Set(sources);
    requireArgument(sourceSet.size === this.k && sources.length === this.k, "sources", `expected ${this.k} distinct shard indexes, got ${describeValue(sources)}`);
    for (const [position, index] of [...sources, ...targets].entries()) requireIntegerIn(index, `index ${position}`, 0, this.shardCount - 1);
    requireArgument(targets.length <= this.m && targets.every((index) => !sourceSet.has(index)) && new Set(targets).size === targets.length, "targets", `expected at most ${this.m} distinct indexes outside sources, got ${describeValue(targets)}`);
    if (targets.length === 0) return;
    await this.#reconstructPlaced(scratch, sources, targets);
  }

  async #reconstructPlaced(scratch: ReconstructScratch, sources: readonly number[], targets: readonly number[]): Promise<void> {
    assert(this.#context !== undefined, "m >= 1 when a chunk is to be computed");
    await runAddon(this.#context, bitmask(sources), bitmask(targets), scratch.stripe, scratch.parity);
  }

  async #encodeParity(stripe: Buffer, parity: Buffer): Promise<void> {
    if (this.#context === undefined) return; // m = 0: no parity to compute.
    assert(stripe.length % this.k === 0 && parity.length === (stripe.length / this.k) * this.m, "stripe layout");
    if (stripe.length <= CODEC_EVENT_LOOP_STRIPE_BYTES_MAX && encodeParityHere(this.#context, stripe, parity)) return;
    const dataMask = bitmask(indexesBelow(this.k));
    const parityMask = bitmask(indexesBelow(this.shardCount).slice(this.k));
    await runAddon(this.#context, dataMask, parityMask, stripe, parity);
  }

  /** Validates a stripe for encodeStripe and returns its chunk size. */
  #requireStripe(stripe: Buffer): number {
    requireArgument(Buffer.isBuffer(stripe), "stripe", `expected a Buffer, got ${describeValue(stripe)}`);
    const unitBytes = this.k * CHUNK_ALIGN_BYTES;
    requireArgument(
      stripe.length > 0 && stripe.length % unitBytes === 0,
      "stripe",
      `expected a non-zero multiple of k * ${CHUNK_ALIGN_BYTES} = ${unitBytes} bytes, got ${stripe.length}`,
    );
    const stripeBytesMax = this.k * CODEC_CHUNK_BYTES_MAX;
    requireArgument(
      stripe.length <= stripeBytesMax,
      "stripe",
      `expected at most k * ${CODEC_CHUNK_BYTES_MAX} = ${stripeBytesMax} bytes, got ${stripe.length}`,
    );
    return stripe.length / this.k;
  }

  /** A scratch of createScratch's layout for `chunkBytes`, sharing no memory with the chunks. */
  #requireScratch(scratch: ReconstructScratch, chunkBytes: number, chunks: readonly (Buffer | undefined)[]): void {
    requireArgument(typeof scratch === "object" && scratch !== null && Buffer.isBuffer(scratch.stripe) && Buffer.isBuffer(scratch.parity), "scratch", `expected {stripe, parity} Buffers, got ${describeValue(scratch)}`);
    requireArgument(
      scratch.stripe.length === this.k * chunkBytes && scratch.parity.length === this.m * chunkBytes,
      "scratch",
      `expected k * ${chunkBytes} and m * ${chunkBytes} bytes (createScratch(${chunkBytes})), got ${scratch.stripe.length} and ${scratch.parity.length}`,
    );
    requireArgument(
      chunks.every((chunk) => chunk === undefined || (!overlaps(chunk, scratch.stripe) && !overlaps(chunk, scratch.parity))),
      "scratch",
      "must not overlap the chunks (a chunk computed into it is valid only until its next use)",
    );
  }

  /** Validates the k+m chunks given to reconstruct and returns their common size. */
  #requireChunkSet(chunks: readonly (Buffer | undefined)[]): number {
    requireArgument(Array.isArray(chunks), "chunks", `expected an array of chunks, got ${describeValue(chunks)}`);
    requireArgument(
      chunks.length === this.shardCount,
      "chunks",
      `expected k + m = ${this.shardCount} entries, got ${chunks.length}`,
    );
    const missing = indexesBelow(this.shardCount).filter((index) => chunks[index] === undefined);
    requireArgument(
      missing.length <= this.m,
      "chunks",
      `${missing.length} missing (indexes ${missing.join(", ")}) but a ${this.k}+${this.m} code ` +
        `recovers at most ${this.m}`,
    );
    const chunkBytes = requireEqualChunks(chunks, "chunks", { missingAllowed: true });
    assert(chunkBytes !== undefined, "k >= 1 chunks are present when at most m are missing");
    return chunkBytes;
  }

  #requireWant(want: readonly number[]): number[] {
    requireArgument(Array.isArray(want), "want", `expected an array of shard indexes, got ${describeValue(want)}`);
    const seen = new Set<number>();
    want.forEach((index, position) => {
      requireIntegerIn(index, `want[${position}]`, 0, this.shardCount - 1);
      requireArgument(!seen.has(index), `want[${position}]`, `duplicate shard index ${index}`);
      seen.add(index);
    });
    return [...want];
  }
}

/**
 * Views of `buffer` cut into chunks of `chunkBytes` (no copy): the chunks of a stripe, or
 * the parity chunks returned by encodeStripe.
 */
export function splitChunks(buffer: Buffer, chunkBytes: number): Buffer[] {
  requireArgument(Buffer.isBuffer(buffer), "buffer", `expected a Buffer, got ${describeValue(buffer)}`);
  requireArgument(
    Number.isSafeInteger(chunkBytes) && chunkBytes > 0,
    "chunkBytes",
    `expected a positive integer, got ${describeValue(chunkBytes)}`,
  );
  requireArgument(
    buffer.length % chunkBytes === 0,
    "buffer",
    `expected a multiple of chunkBytes = ${chunkBytes} bytes, got ${buffer.length}`,
  );
  return indexesBelow(buffer.length / chunkBytes).map((index) => chunkView(buffer, index, chunkBytes));
}

/** Runs one addon call as a promise. A synchronous throw means our validation missed a case. */
function runAddon(
  context: ReedSolomon.ReedSolomonContext,
  sources: number,
  targets: number,
  stripe: Buffer,
  parity: Buffer,
): Promise<void> {
  assert(sources > 0 && targets > 0 && (sources & targets) === 0, "disjoint, non-empty sources and targets");
  return new Promise((resolve, reject) => {
    try {
      addon.encode(context, sources, targets, stripe, 0, stripe.length, parity, 0, parity.length, (error) => {
        if (error) reject(error);
        else resolve();
      });
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      reject(new AssertionError(`invariant broken: the addon refused validated arguments: ${why}`, { cause: error }));
    }
  });
}

/**
 * The addon's encode of all m parity chunks from all k data chunks (reed_solomon_encode in
 * @ronomon/reed-solomon's binding.c, with every data chunk a source and every parity chunk
 * a target), on this thread. The context is the addon's: w, k, m, then the k*w by m*w bit
 * matrix. Each chunk is cut into w sub-blocks (per group of w * subBytes, see subBlockBytes);
 * sub-block a of parity chunk i is the XOR of the data sub-blocks its matrix row selects.
 * False (nothing written) when the buffers are not 32-bit aligned: the addon encodes those.
 */
function encodeParityHere(context: ReedSolomon.ReedSolomonContext, stripe: Buffer, parity: Buffer): boolean {
  const w = context[0] as number;
  const k = context[1] as number;
  const m = context[2] as number;
  const chunkBytes = stripe.length / k;
  assert(context.length === 3 + k * w * m * w && (w === 2 || w === 4 || w === 8), "the addon's context layout");
  assert(parity.length === m * chunkBytes && chunkBytes % 8 === 0 && chunkBytes % w === 0, "stripe and parity layout");
  const data = (index: number): Buffer => stripe.subarray(index * chunkBytes, (index + 1) * chunkBytes);
  if (k === 1) {
    // The addon replicates: every parity chunk is the data chunk.
    for (let index = 0; index < m; index++) stripe.copy(parity, index * chunkBytes, 0, chunkBytes);
    return true;
  }
  if (m === 1) {
    // The addon's single-erasure path: the one parity chunk is the XOR of the data chunks.
    stripe.copy(parity, 0, 0, chunkBytes);
    for (let index = 1; index < k; index++) xorInto(data(index), parity, 0, chunkBytes);
    return true;
  }
  const subBytes = subBlockBytes(w, k, chunkBytes);
  // Whole 32-bit words, so every sub-block must start 4-byte aligned; else the addon does it.
  if (stripe.byteOffset % 4 !== 0 || parity.byteOffset % 4 !== 0 || subBytes % 4 !== 0) return false;
  const from = new Int32Array(stripe.buffer, stripe.byteOffset, stripe.length / 4);
  const into = new Int32Array(parity.buffer, parity.byteOffset, parity.length / 4);
  const subWords = subBytes / 4;
  const chunkWords = chunkBytes / 4;
  const rowBytes = k * w * w;
  for (let index = 0; index < m; index++) {
    for (let offset = 0; offset < chunkWords; offset += w * subWords) {
      let column = 3 + index * rowBytes;
      for (let a = 0; a < w; a++) {
        const target = index * chunkWords + offset + a * subWords;
        let copied = false;
        for (let b = 0; b < k; b++) {
          for (let c = 0; c < w; c++, column++) {
            if (context[column] === 0) continue;
            const source = b * chunkWords + offset + c * subWords;
            if (copied) for (let at = 0; at < subWords; at++) into[target + at] = (into[target + at] as number) ^ (from[source + at] as number);
            else into.set(from.subarray(source, source + subWords), target);
            copied = true;
          }
        }
        if (!copied) into.fill(0, target, target + subWords);
      }
    }
  }
  return true;
}

/** dot_chunk_size of binding.c: sub-blocks halve until a dot product's working set fits in 1 MiB. */
function subBlockBytes(w: number, k: number, chunkBytes: number): number {
  let bytes = chunkBytes / w;
  while (bytes > 64 && bytes % 2 === 0 && (1 + k * w) * bytes > 1_048_576) bytes /= 2;
  return bytes;
}

/** target[at .. at + length) ^= source[0 .. length), four bytes at a time where both are aligned. */
function xorInto(source: Buffer, target: Buffer, at: number, length: number): void {
  let done = 0;
  const targetOffset = target.byteOffset + at;
  if (source.byteOffset % 4 === 0 && targetOffset % 4 === 0) {
    const words = length >>> 2;
    const from = new Int32Array(source.buffer, source.byteOffset, words);
    const into = new Int32Array(target.buffer, targetOffset, words);
    for (let index = 0; index < words; index++) into[index] = (into[index] as number) ^ (from[index] as number);
    done = words * 4;
  }
  for (let index = done; index < length; index++) target[at + index] = (target[at + index] as number) ^ (source[index] as number);
}

/**
 * Checks that the chunks are Buffers of one valid size; returns that size, or undefined
 * when none is present. Missing (undefined) entries are skipped when `missingAllowed`.
 */
function requireEqualChunks(
  chunks: readonly (Buffer | undefined)[],
  name: string,
  options: { missingAllowed: boolean },
): number | undefined {
  let reference: { index: number; bytes: number } | undefined;
  chunks.forEach((chunk, index) => {
    if (chunk === undefined && options.missingAllowed) return;
    const option = `${name}[${index}]`;
    requireArgument(Buffer.isBuffer(chunk), option, `expected a Buffer, got ${describeValue(chunk)}`);
    if (reference === undefined) {
      requireChunkBytes(chunk.length, option);
      reference = { index, bytes: chunk.length };
      return;
    }
    requireArgument(
      chunk.length === reference.bytes,
      option,
      `expected ${reference.bytes} bytes like ${name}[${reference.index}], got ${chunk.length}`,
    );
  });
  return reference?.bytes;
}

function requireChunkBytes(bytes: number, option: string): void {
  requireArgument(bytes > 0, option, "expected a non-empty chunk");
  requireArgument(
    bytes % CHUNK_ALIGN_BYTES === 0,
    option,
    `expected a multiple of ${CHUNK_ALIGN_BYTES} bytes, got ${bytes}`,
  );
  requireArgument(
    bytes <= CODEC_CHUNK_BYTES_MAX,
    option,
    `expected at most ${CODEC_CHUNK_BYTES_MAX} bytes, got ${bytes}`,
  );
}

function requireIntegerIn(value: unknown, option: string, min: number, max: number): asserts value is number {
  requireArgument(
    typeof value === "number" && Number.isInteger(value) && value >= min && value <= max,
    option,
    `expected an integer in [${min}, ${max}], got ${describeValue(value)}`,
  );
}

/** The k chunks as one buffer: a view when they are already adjacent in memory, else a copy. */
function contiguousView(chunks: readonly Buffer[], chunkBytes: number): Buffer {
  const first = chunks[0];
  assert(first !== undefined, "at least one chunk");
  const adjacent = chunks.every(
    (chunk, index) => chunk.buffer === first.buffer && chunk.byteOffset === first.byteOffset + index * chunkBytes,
  );
  const totalBytes = chunks.length * chunkBytes;
  return adjacent ? Buffer.from(first.buffer, first.byteOffset, totalBytes) : Buffer.concat(chunks, totalBytes);
}

function overlaps(a: Buffer, b: Buffer): boolean {
  if (a.length === 0 || b.length === 0 || a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;
}

function chunkView(buffer: Buffer, index: number, chunkBytes: number): Buffer {
  return buffer.subarray(index * chunkBytes, (index + 1) * chunkBytes);
}

function presentChunk(chunks: readonly (Buffer | undefined)[], index: number): Buffer {
  const chunk = chunks[index];
  assert(chunk !== undefined, `chunk ${index} is present`);
  return chunk;
}

function indexesBelow(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}

/** Shard indexes as the addon's bit flags; k+m <= 30, so every mask is a positive int32. */
function bitmask(indexes: readonly number[]): number {
  let mask = 0;
  for (const index of indexes) mask |= 1 << index;
  assert(mask >= 0, "masks stay below bit 31");
  return mask;
}

/** A short, unambiguous rendering of a bad argument for error messages. */
function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (Buffer.isBuffer(value)) return "a Buffer";
  return typeof value;
}
