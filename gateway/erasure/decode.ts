/**
 * Streaming erasure decode (DESIGN.md, "Data path"): read the k data shards stripe by stripe
 * over only the stripes a range needs; when a shard fails (node down, timeout, checksum
 * mismatch) swap in another shard from the stripe where it failed and reconstruct, without
 * the client noticing. Memory is one stripe of k chunks plus what the readers buffer, held
 * as a share of the gateway's stripe budget for large reads.
 */
import { assert } from "../../core/assert.js";
import { ErasureCodec, type ReconstructScratch } from "../../core/codec.js";
import { TesseraError } from "../../core/errors.js";
import { frameOffset, shardLayout, verifyFrame, type ShardHeader, type ShardLayout } from "../../core/shard-format.js";
import { readFramePieces, type VerifiedChunkPieces } from "../../core/shard-stream.js";
import type { StripeRange } from "../../core/storage-api.js";
import type { EncodeParams } from "./encode.js";
import { BUDGET_SHARE_BYTES_MIN, GET_STRIPES_HELD, stripeBudget } from "./stripe-budget.js";

/**
 * How long one chunk may take to arrive before its shard counts as failed and parity is
 * used instead. Long enough for a 256 KiB chunk from a busy disk; short enough that a hung
 * node costs a client a pause, not a timeout (S3 clients give up after about 60 s).
 */
export const DECODE_CHUNK_TIMEOUT_MS = 10_000;

/** Opens the frames of `range` of shard `shardIndex`; the read stops when `signal` aborts. */
export type ShardSource = (shardIndex: number, range: StripeRange, signal: AbortSignal) => AsyncIterable<Buffer>;

export interface DecodeOptions {
  /** Called once per shard that failed during this read: queue the object for repair. */
  readonly onShardFailure?: (shardIndex: number, error: unknown) => void;
  /** Shards known to be unusable before the read starts (node down): never tried. */
  readonly skipShards?: ReadonlySet<number>;
  /**
   * Shards believed unusable (the failure detector holds their node suspect or down): tried
   * only when every other shard failed, so a wrongly suspected node still serves a read that
   * needs it.
   */
  readonly deferShards?: ReadonlySet<number>;
  readonly chunkTimeoutMs?: number;
  /**
   * This read feeds a request that already holds a share of the stripe budget (a copy's
   * encoder): its own share is granted at once, since waiting could wait on that request.
   */
  readonly nestedInHeldShare?: boolean;
}

/**
 * The reason a finished read's readers are aborted with: one shared Error, since a fresh one
 * per reader (its stack trace captured) was 2% of the gateway's CPU on 4 KiB GETs. Nobody
 * throws it to a client: it only tells a shard source to stop.
 */
const READ_FINISHED = new Error("read finished");

interface Reader {
  readonly shardIndex: number;
  readonly iterator: AsyncIterator<VerifiedChunkPieces>;
  readonly abort: AbortController;
}

/** Yields the bytes [start, end) of the object encoded with `params`, as views (no copies). */
export async function* decodeRange(params: EncodeParams, source: ShardSource, start: number, end: number, options: DecodeOptions = {}): AsyncGenerator<Buffer> {
  assert(start >= 0 && start <= end && end <= params.objectLength, "range within the object");
  if (start === end) return;
  const codec = new ErasureCodec({ k: params.k, m: params.m });
  const layout = shardLayout({ ...params, shardIndex: 0 });
  const firstStripe = Math.floor(start / params.blockBytes);
  const lastStripe = Math.floor((end - 1) / params.blockBytes);
  // A share of the gateway's stripe budget (stripe-budget.ts) before any shard is opened.
  const share = Math.min(GET_STRIPES_HELD * params.blockBytes, (lastStripe - firstStripe + 1) * params.blockBytes);
  const release = share < BUDGET_SHARE_BYTES_MIN ? undefined : await stripeBudget.acquire(share, { nested: options.nestedInHeldShare === true });
  const decoder = new StripeReaders(params, source, lastStripe, options);
  const dataIndexes = indexes(params.k);
  // Degraded stripes are rebuilt in one scratch for the whole read (1.5 stripes at 4+2,
  // instead of a fresh one per stripe); only the rebuilt chunks leave it, copied, since
  // what this yields may be held by the consumer (a socket's write queue) past the next stripe.
  let scratch: ReconstructScratch | undefined;
  try {
    for (let stripe = firstStripe; stripe <= lastStripe; stripe++) {
      const pieces = await decoder.readStripePieces(stripe);
      const healthy = pieces.slice(0, params.k);
      if (healthy.every((chunk) => chunk !== undefined)) {
        // Every data chunk came: its pieces go out as they arrived, without a join.
        yield* sliceStripe(healthy as (readonly Buffer[])[], stripe * params.blockBytes, layout.chunkBytes, start, end);
        continue;
      }
      // Degraded: k present chunks are copied into place in the scratch, piece by piece (no
      // join first), the missing data chunks computed there and copied out; the present data
      // chunks still go out as their pieces.
      const place = (scratch ??= codec.createScratch(layout.chunkBytes));
      await reconstructFromPieces(codec, place, pieces, dataIndexes.filter((index) => pieces[index] === undefined));
      const data = healthy.map((chunk, index) => chunk ?? [Buffer.from(codec.scratchChunk(place, index))]);
      yield* sliceStripe(data, stripe * params.blockBytes, layout.chunkBytes, start, end);
    }
  } finally {
    decoder.close();
    release?.();
  }
}

/**
 * Yields the bytes [start, end) of an object whose shards are all in memory (a small object
 * stored inline in its records): `shards[i]` is shard i's frames (no header; undefined when
 * that disk did not give it). When the k data shards are all there and every chunk the range
 * needs passes its checksum, the range is copied out of them in one Buffer, with no shard
 * readers, timers or promises per chunk; otherwise (a shard missing, short or corrupt) the
 * same shards go through decodeRange, which reads around the bad ones and reports each.
 */
export async function* decodeInline(params: EncodeParams, shards: readonly (Buffer | undefined)[], start: number, end: number, options: DecodeOptions = {}): AsyncGenerator<Buffer> {
  assert(start >= 0 && start <= end && end <= params.objectLength, "range within the object");
  assert(shards.length === params.k + params.m, "one entry per shard");
  if (start === end) return;
  const whole = copyFromDataShards(params, shards, start, end);
  if (whole !== undefined) {
    yield whole;
    return;
  }
  const layout = shardLayout({ ...params, shardIndex: 0 });
  const source: ShardSource = (shardIndex, range) => framesOf(shards[shardIndex], shardIndex, layout, range);
  yield* decodeRange(params, source, start, end, options);
}

/** [start, end) copied out of the k data shards' verified chunks, or undefined if one is missing, short or fails its checksum. */
function copyFromDataShards(params: EncodeParams, shards: readonly (Buffer | undefined)[], start: number, end: number): Buffer | undefined {
  const layout = shardLayout({ ...params, shardIndex: 0 });
  const firstStripe = Math.floor(start / params.blockBytes);
  const lastStripe = Math.floor((end - 1) / params.blockBytes);
  const framesEnd = frameOffset(layout, lastStripe + 1) - frameOffset(layout, 0);
  const out = Buffer.allocUnsafe(end - start);
  for (let shardIndex = 0; shardIndex < params.k; shardIndex++) {
    const frames = shards[shardIndex];
    if (frames === undefined || frames.length < framesEnd) return undefined;
    const header: ShardHeader = { ...params, shardIndex };
    for (let stripe = firstStripe; stripe <= lastStripe; stripe++) {
      const chunkStart = stripe * params.blockBytes + shardIndex * layout.chunkBytes;
      const from = Math.max(start, chunkStart);
      const to = Math.min(end, chunkStart + layout.chunkBytes);
      if (from >= to) continue;
      const at = stripe * layout.frameBytes;
      let chunk: Buffer;
      try {
        chunk = verifyFrame(header, layout, frames.subarray(at, at + layout.frameBytes), stripe);
      } catch {
        return undefined; // decodeRange reads around it and reports it
      }
      chunk.copy(out, from - start, from - chunkStart, to - chunkStart);
    }
  }
  return out;
}

/** Frames of `range` from an in-memory shard (frames only), as decodeRange's sources deliver them. */
async function* framesOf(frames: Buffer | undefined, shardIndex: number, layout: ShardLayout, range: StripeRange): AsyncGenerator<Buffer> {
  if (frames === undefined) throw new TesseraError("ERR_NOT_FOUND", `no inline shard ${shardIndex}`);
  const base = frameOffset(layout, 0);
  yield frames.subarray(frameOffset(layout, range.firstStripe) - base, frameOffset(layout, range.firstStripe + range.stripeCount) - base);
}

/** The bytes of [start, end) within one stripe's data chunks, each chunk given as its pieces. */
function* sliceStripe(data: readonly (readonly Buffer[])[], stripeStart: number, chunkBytes: number, start: number, end: number): Generator<Buffer> {
  for (let index = 0; index < data.length; index++) {
    let pieceStart = stripeStart + index * chunkBytes;
    for (const piece of data[index] as readonly Buffer[]) {
      const from = Math.max(start, pieceStart);
      const to = Math.min(end, pieceStart + piece.length);
      if (from < to) yield piece.subarray(from - pieceStart, to - pieceStart);
      pieceStart += piece.length;
    }
  }
}

/**
 * Computes the chunks at `targets` of one stripe in `scratch` (codec.createScratch) from its
 * first k present chunks, each given as the pieces it arrived in (`pieces`: k + m entries,
 * undefined where absent) and copied into place piece by piece, with no join first. The
 * results are the scratch's chunks (codec.scratchChunk): valid until the scratch is used again.
 */
export async function reconstructFromPieces(codec: ErasureCodec, scratch: ReconstructScratch, pieces: readonly (readonly Buffer[] | undefined)[], targets: readonly number[]): Promise<void> {
  const sources = pieces.flatMap((chunk, index) => (chunk === undefined ? [] : [index])).slice(0, codec.k);
  for (const index of sources) copyPieces(pieces[index] as readonly Buffer[], codec.scratchChunk(scratch, index));
  await codec.reconstructInPlace(scratch, sources, targets);
}

/** Copies a chunk's pieces, in order, into `target` (exactly their total length). */
function copyPieces(pieces: readonly Buffer[], target: Buffer): void {
  let at = 0;
  for (const piece of pieces) at += piece.copy(target, at);
  assert(at === target.length, "a chunk's pieces fill its place exactly");
}

function indexes(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index);
}

/**
 * The set of shard readers of one decode: k at a time, replaced as they fail. Exported for
 * the healer's rebuild (gateway/healer/rebuild.ts), which reads k shards the same way.
 */
export class StripeReaders {
  readonly #params: EncodeParams;
  readonly #source: ShardSource;
  readonly #lastStripe: number;
  readonly #options: DecodeOptions;
  #active: Reader[] = [];
  /** Shard indexes not yet tried, data first, then parity, deferred ones last. */
  readonly #untried: number[];

  constructor(params: EncodeParams, source: ShardSource, lastStripe: number, options: DecodeOptions) {
    this.#params = params;
    this.#source = source;
    this.#lastStripe = lastStripe;
    this.#options = options;
    const usable = indexes(params.k + params.m).filter((index) => options.skipShards?.has(index) !== true);
    const deferred = (index: number): boolean => options.deferShards?.has(index) === true;
    this.#untried = [...usable.filter((index) => !deferred(index)), ...usable.filter(deferred)];
  }

  /**
   * The chunks of `stripe`, k + m entries, exactly k of them present, each as the pieces it
   * arrived in (views of the readers' input).
   */
  async readStripePieces(stripe: number): Promise<(readonly Buffer[] | undefined)[]> {
    const chunks = new Array<readonly Buffer[] | undefined>(this.#params.k + this.#params.m).fill(undefined);
    const delivered: Reader[] = [];
    let asking = this.#active;
    while (delivered.length < this.#params.k) {
      while (delivered.length + asking.length < this.#params.k) asking.push(this.#open(stripe));
      const results = await Promise.allSettled(asking.map((reader) => this.#next(reader, stripe)));
      results.forEach((result, position) => {
        const reader = asking[position] as Reader;
        if (result.status === "fulfilled") {
          chunks[reader.shardIndex] = result.value;
          delivered.push(reader);
        } else {
          this.#fail(reader, result.reason);
        }
      });
      asking = [];
    }
    this.#active = delivered;
    return chunks;
  }

  /** Starts reading the next untried shard from `stripe` to the end of the range. */
  #open(stripe: number): Reader {
    const shardIndex = this.#untried.shift();
    if (shardIndex === undefined) {
      throw new TesseraError("ERR_READ_QUORUM", `stripe ${stripe}: fewer than k = ${this.#params.k} shards readable`, { stripe });
    }
    const header: ShardHeader = { ...this.#params, shardIndex };
    const range: StripeRange = { firstStripe: stripe, stripeCount: this.#lastStripe - stripe + 1 };
    const abort = new AbortController();
    const frames = readFramePieces(this.#source(shardIndex, range, abort.signal), header, range.firstStripe, range.stripeCount);
    return { shardIndex, iterator: frames[Symbol.asyncIterator](), abort };
  }

  async #next(reader: Reader, stripe: number): Promise<readonly Buffer[]> {
    const timeoutMs = this.#options.chunkTimeoutMs ?? DECODE_CHUNK_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TesseraError("ERR_NODE_UNAVAILABLE", `shard ${reader.shardIndex}: no chunk within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const result = await Promise.race([reader.iterator.next(), timeout]);
      if (result.done === true) throw new TesseraError("ERR_SHARD_TRUNCATED", `shard ${reader.shardIndex} ended before stripe ${stripe}`);
      assert(result.value.stripe === stripe, "readers advance one stripe per call");
      return result.value.pieces;
    } finally {
      clearTimeout(timer);
    }
  }

  #fail(reader: Reader, error: unknown): void {
    reader.abort.abort(error);
    this.#options.onShardFailure?.(reader.shardIndex, error);
  }

  close(): void {
    for (const reader of this.#active) reader.abort.abort(READ_FINISHED);
    this.#active = [];
  }
}
