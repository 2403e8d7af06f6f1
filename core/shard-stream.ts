/**
 * Streaming writer and readers of the shard format (core/shard-format.ts). None of them
 * holds more than one frame plus the piece of input being cut, whatever the shard size.
 */
import { Transform, type TransformCallback } from "node:stream";
import { assert } from "./assert.js";
import { RunningChecksum, checksumBytes } from "./checksum.js";
import { TesseraError } from "./errors.js";
import { FixedCutter } from "./fixed-cutter.js";
import { SHARD_HEADER_BYTES } from "./limits.js";
import {
  chunkChecksumError,
  chunkTrailer,
  decodeShardHeader,
  encodeShardHeader,
  shardLayout,
  verifyFrame,
  type ShardHeader,
  type ShardIdentity,
  type ShardLayout,
} from "./shard-format.js";

export interface VerifiedChunk {
  readonly stripe: number;
  /** The chunk's bytes (padded to chunkBytes on the last stripe); a view, not a copy. */
  readonly chunk: Buffer;
}

function truncated(expectedBytes: number, receivedBytes: number, what: string): TesseraError {
  return new TesseraError("ERR_SHARD_TRUNCATED", `${what}: ended after ${receivedBytes} of ${expectedBytes} bytes`, { expectedBytes, receivedBytes });
}

function tooLong(expectedBytes: number, what: string): TesseraError {
  return new TesseraError("ERR_SHARD_TOO_LONG", `${what}: more than the ${expectedBytes} bytes its header declares`, { expectedBytes });
}

/**
 * Incremental parser of a whole shard file, or of a run of frames when the header is
 * already known (a range read). Push bytes in any pieces; verified chunks come out.
 */
export class ShardParser {
  #header: ShardHeader | undefined;
  #layout: ShardLayout | undefined;
  readonly #expect: ShardIdentity | undefined;
  readonly #cutter = new FixedCutter();
  #stripe: number;
  #endStripe: number;
  #receivedBytes = 0;
  #expectedBytes: number;

  /** Parse a whole shard file (header first), refusing a header other than `expect`. */
  static forFile(expect?: ShardIdentity): ShardParser {
    return new ShardParser(undefined, expect, 0, 0);
  }

  /** Parse `count` frames starting at stripe `first` of a shard whose header is known. */
  static forFrames(header: ShardHeader, first: number, count: number): ShardParser {
    const layout = shardLayout(header);
    assert(first >= 0 && count >= 0 && first + count <= layout.stripeCount, "frame range within the shard");
    return new ShardParser(header, undefined, first, count);
  }

  private constructor(header: ShardHeader | undefined, expect: ShardIdentity | undefined, first: number, count: number) {
    this.#expect = expect;
    this.#stripe = first;
    this.#endStripe = first + count;
    this.#expectedBytes = SHARD_HEADER_BYTES;
    if (header !== undefined) this.#setHeader(header, first, count, false);
  }

  get header(): ShardHeader | undefined {
    return this.#header;
  }

  #setHeader(header: ShardHeader, first: number, count: number, withHeader: boolean): void {
    this.#header = header;
    this.#layout = shardLayout(header);
    this.#endStripe = first + count;
    this.#expectedBytes = (withHeader ? SHARD_HEADER_BYTES : 0) + count * this.#layout.frameBytes;
  }

  #pieceSize = (): number => (this.#layout === undefined ? SHARD_HEADER_BYTES : this.#layout.frameBytes);

  /** Feeds bytes; returns the chunks they completed, each verified. Throws on any fault. */
  push(bytes: Buffer): VerifiedChunk[] {
    const out: VerifiedChunk[] = [];
    this.#receivedBytes += bytes.length;
    this.#cutter.feed(bytes, this.#pieceSize, (piece) => {
      if (this.#layout === undefined) {
        const header = decodeShardHeader(piece, this.#expect);
        this.#setHeader(header, 0, shardLayout(header).stripeCount, true);
        return;
      }
      assert(this.#header !== undefined, "layout implies header");
      if (this.#stripe >= this.#endStripe) throw tooLong(this.#expectedBytes, this.#what());
      out.push({ stripe: this.#stripe, chunk: verifyFrame(this.#header, this.#layout, piece, this.#stripe) });
      this.#stripe += 1;
    });
    return out;
  }

  /** Call at end of input: throws ERR_SHARD_TRUNCATED unless everything declared arrived. */
  end(): void {
    if (this.#layout === undefined || this.#stripe < this.#endStripe || this.#cutter.pendingBytes > 0) {
      throw truncated(this.#expectedBytes, this.#receivedBytes, this.#what());
    }
  }

  #what(): string {
    return this.#header === undefined ? "shard" : `shard ${this.#header.shardIndex}`;
  }
}

/** A verified chunk as the pieces it arrived in: views of the input, never copies. */
export interface VerifiedChunkPieces {
  readonly stripe: number;
  /** In order; together exactly chunkBytes (padded on the last stripe). */
  readonly pieces: readonly Buffer[];
}

/**
 * Checks a shard file, or a run of its frames, as it streams, the way ShardParser does (same
 * errors), but without ever joining a frame: the header's 80 bytes are gathered, then each
 * chunk's checksum runs over the pieces as they come and is compared with the trailer after
 * it. The storage node's write path only needs the verdict (`new ShardChecker(expect)`); a
 * GET's readers (`ShardChecker.forFrames`, readFramePieces) also get each verified chunk as
 * the pieces it came in, so bytes go from the node's socket to the client's without a copy
 * and without a frame-sized buffer per chunk (their churn set the pace of major GCs).
 */
export class ShardChecker {
  readonly #expect: ShardIdentity | undefined;
  readonly #headerPieces: Buffer[] = [];
  #headerBytes = 0;
  #header: ShardHeader | undefined;
  #layout: ShardLayout | undefined;
  #checksum: RunningChecksum | undefined;
  readonly #trailer = Buffer.alloc(8);
  #trailerBytes = 0;
  /** Position within the current frame (chunk, then trailer). */
  #inFrame = 0;
  #stripe = 0;
  /** One past the last stripe expected; set with the layout. */
  #endStripe = 0;
  #expectedBytes = SHARD_HEADER_BYTES;
  #receivedBytes = 0;
  /** The current chunk's pieces, when chunks are handed out (forFrames). */
  #pieces: Buffer[] | undefined;

  constructor(expect?: ShardIdentity) {
    this.#expect = expect;
  }

  /** Checks `count` frames from stripe `first` of a shard whose header is known; push returns their chunks. */
  static forFrames(header: ShardHeader, first: number, count: number): ShardChecker {
    const layout = shardLayout(header);
    assert(first >= 0 && count >= 0 && first + count <= layout.stripeCount, "frame range within the shard");
    const checker = new ShardChecker();
    checker.#setHeader(header, first, count);
    checker.#expectedBytes = count * layout.frameBytes;
    checker.#pieces = [];
    return checker;
  }

  get header(): ShardHeader | undefined {
    return this.#header;
  }

  /**
   * Feeds bytes in any pieces; throws on a bad header, a bad chunk or bytes past the end.
   * Returns the chunks these bytes completed (always none for a whole-file check).
   */
  push(bytes: Buffer): VerifiedChunkPieces[] {
    const out: VerifiedChunkPieces[] = [];
    this.#receivedBytes += bytes.length;
    let rest = bytes;
    if (this.#layout === undefined) rest = this.#gatherHeader(rest);
    while (rest.length > 0) rest = this.#frameBytes(rest, out);
    return out;
  }

  /** Call at end of input: throws ERR_SHARD_TRUNCATED unless everything expected arrived. */
  end(): void {
    if (this.#layout === undefined || this.#stripe < this.#endStripe || this.#inFrame > 0) {
      throw truncated(this.#expectedBytes, this.#receivedBytes, this.#what());
    }
  }

  #setHeader(header: ShardHeader, first: number, count: number): void {
    this.#header = header;
    this.#layout = shardLayout(header);
    this.#checksum = new RunningChecksum(header.checksumAlgorithm);
    this.#stripe = first;
    this.#endStripe = first + count;
    assert(checksumBytes(header.checksumAlgorithm) <= this.#trailer.length, "a trailer fits its buffer");
  }

  #gatherHeader(bytes: Buffer): Buffer {
    const take = Math.min(bytes.length, SHARD_HEADER_BYTES - this.#headerBytes);
    this.#headerPieces.push(bytes.subarray(0, take));
    this.#headerBytes += take;
    if (this.#headerBytes === SHARD_HEADER_BYTES) {
      const header = decodeShardHeader(Buffer.concat(this.#headerPieces, SHARD_HEADER_BYTES), this.#expect);
      const stripeCount = shardLayout(header).stripeCount;
      this.#setHeader(header, 0, stripeCount);
      this.#expectedBytes = shardLayout(header).fileBytes;
    }
    return bytes.subarray(take);
  }

  /** Consumes what belongs to the current frame; returns the rest. */
  #frameBytes(bytes: Buffer, out: VerifiedChunkPieces[]): Buffer {
    const layout = this.#layout;
    const checksum = this.#checksum;
    const header = this.#header;
    assert(layout !== undefined && checksum !== undefined && header !== undefined, "frames follow the header");
    if (this.#stripe >= this.#endStripe) throw tooLong(this.#expectedBytes, this.#what());
    const take = Math.min(bytes.length, layout.frameBytes - this.#inFrame);
    const chunkEnd = Math.max(0, Math.min(take, layout.chunkBytes - this.#inFrame));
    if (chunkEnd > 0) {
      const piece = bytes.subarray(0, chunkEnd);
      checksum.update(piece);
      this.#pieces?.push(piece);
    }
    if (take > chunkEnd) this.#trailerBytes += bytes.copy(this.#trailer, this.#trailerBytes, chunkEnd, take);
    this.#inFrame += take;
    if (this.#inFrame === layout.frameBytes) {
      if (!checksum.matches(this.#trailer, 0)) throw chunkChecksumError(header.shardIndex, this.#stripe);
      if (this.#pieces !== undefined) {
        out.push({ stripe: this.#stripe, pieces: this.#pieces });
        this.#pieces = [];
      }
      checksum.reset();
      this.#trailerBytes = 0;
      this.#inFrame = 0;
      this.#stripe += 1;
    }
    return bytes.subarray(take);
  }

  #what(): string {
    return this.#header === undefined ? "shard" : `shard ${this.#header.shardIndex}`;
  }
}

/** Reads and verifies a whole shard file from any byte source, chunk by chunk. */
export async function* readShard(source: AsyncIterable<Buffer>, expect?: ShardIdentity): AsyncGenerator<VerifiedChunk, ShardHeader> {
  const parser = ShardParser.forFile(expect);
  for await (const bytes of source) yield* parser.push(bytes);
  parser.end();
  assert(parser.header !== undefined, "a parser that ended cleanly has its header");
  return parser.header;
}

/**
 * Reads and verifies `count` frames from stripe `first`, header known (a range read); each
 * chunk comes as the pieces it arrived in (ShardChecker.forFrames): no copy, no join.
 */
export async function* readFramePieces(source: AsyncIterable<Buffer>, header: ShardHeader, first: number, count: number): AsyncGenerator<VerifiedChunkPieces> {
  const checker = ShardChecker.forFrames(header, first, count);
  for await (const bytes of source) yield* checker.push(bytes);
  checker.end();
}

/**
 * Serializes a shard: the header, then each chunk followed by its checksum trailer. Chunks
 * are passed through without copying; each must be exactly chunkBytes (the caller pads the
 * last stripe), and there must be exactly stripeCount of them.
 */
export async function* writeShard(header: ShardHeader, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer> {
  const layout = shardLayout(header);
  yield encodeShardHeader(header);
  let stripe = 0;
  for await (const chunk of chunks) {
    if (stripe >= layout.stripeCount) throw tooLong(layout.fileBytes, `shard ${header.shardIndex}`);
    assert(chunk.length === layout.chunkBytes, `chunk ${stripe} is chunkBytes (${layout.chunkBytes}) long, got ${chunk.length}`);
    yield chunk;
    yield chunkTrailer(header, chunk);
    stripe += 1;
  }
  if (stripe < layout.stripeCount) {
    throw truncated(layout.fileBytes, SHARD_HEADER_BYTES + stripe * layout.frameBytes, `shard ${header.shardIndex}`);
  }
}

/**
 * A pass-through that verifies a whole shard file as it flows (the storage node's write
 * path): bytes leave unchanged, and the stream errors on a bad header, a chunk that fails
 * its checksum, extra bytes, or an early end — so a bad shard is never committed.
 */
export function createShardVerifier(expect?: ShardIdentity): Transform & { readonly parser: ShardParser } {
  const parser = ShardParser.forFile(expect);
  const transform = new Transform({
    transform(bytes: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        parser.push(bytes);
        callback(null, bytes);
      } catch (error) {
        callback(error as Error);
      }
    },
    flush(callback: TransformCallback) {
      try {
        parser.end();
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
  });
  return Object.assign(transform, { parser });
}
