/**
 * Streaming rebuild of lost shards of one shard set (an object version or one multipart
 * part): read k good shards stripe by stripe (the decoder's StripeReaders, which swap in
 * another shard when one fails), reconstruct the wanted indexes of each stripe, and stream
 * each into its own shard writer through a bounded channel. Memory is one reconstruct scratch
 * (k + m chunks) reused for every stripe, what the readers buffer, and ENCODE_CHUNKS_QUEUED_MAX
 * chunks per writer, whatever the size; a rebuild of a large shard set holds a share of the
 * healer's and the gateway's stripe budgets for as long (REBUILD_STRIPE_SETS_HELD,
 * HEALER_STRIPE_BUDGET_BYTES in gateway/erasure/stripe-budget.ts).
 */
import { assert } from "../../core/assert.js";
import { ErasureCodec } from "../../core/codec.js";
import { TesseraError } from "../../core/errors.js";
import { shardLayout, type ShardLayout } from "../../core/shard-format.js";
import { writeShard } from "../../core/shard-stream.js";
import type { StripeRange } from "../../core/storage-api.js";
import { ChunkChannel } from "../erasure/chunk-channel.js";
import { reconstructFromPieces, StripeReaders } from "../erasure/decode.js";
import { ENCODE_CHUNKS_QUEUED_MAX, type EncodeParams } from "../erasure/encode.js";
import { BUDGET_SHARE_BYTES_MIN, healerStripeBudget, objectShareBytes, REBUILD_STRIPE_SETS_HELD, stripeBudget } from "../erasure/stripe-budget.js";

/** Reading and writing the shards of one shard set, wherever they live (nodes or records). */
export interface ShardSetIo {
  readonly params: EncodeParams;
  /** Frames of `range` of shard `shardIndex` (no header), as the node's range read returns them. */
  read(shardIndex: number, range: StripeRange, signal: AbortSignal): AsyncIterable<Buffer>;
  /** Stores a whole shard file (header and frames) of `declaredBytes`; resolves once committed. */
  write(shardIndex: number, body: AsyncIterable<Buffer>, declaredBytes: number): Promise<void>;
}

export interface RebuildResult {
  readonly written: readonly number[];
  /** Wanted indexes whose write failed, with why. */
  readonly failed: ReadonlyMap<number, string>;
  /** Source shards that failed while being read (corrupt or unreachable): rebuild them too. */
  readonly badSources: readonly number[];
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Rebuilds `want` from the other shards, never reading those in `unusable` (known lost or
 * corrupt). Throws ERR_READ_QUORUM when fewer than k shards can be read.
 */
export async function rebuildShardSet(io: ShardSetIo, want: readonly number[], unusable: ReadonlySet<number>): Promise<RebuildResult> {
  const { params } = io;
  assert(want.length > 0 && want.every((index) => index >= 0 && index < params.k + params.m), "wanted shard indexes exist");
  const layout = shardLayout({ ...params, shardIndex: 0 });
  // A share of the healer's part of the stripe budget, then of the gateway's, before any shard
  // is opened (as a GET's decoder takes one). Always in this order, and the gateway's holders
  // never wait on the healer's: no cycle.
  const share = objectShareBytes(params, REBUILD_STRIPE_SETS_HELD);
  if (share < BUDGET_SHARE_BYTES_MIN) return rebuildWithin(io, want, unusable, layout);
  const releaseHealer = await healerStripeBudget.acquire(share);
  try {
    const release = await stripeBudget.acquire(share);
    try {
      return await rebuildWithin(io, want, unusable, layout);
    } finally {
      release();
    }
  } finally {
    releaseHealer();
  }
}

async function rebuildWithin(io: ShardSetIo, want: readonly number[], unusable: ReadonlySet<number>, layout: ShardLayout): Promise<RebuildResult> {
  const { params } = io;
  const badSources: number[] = [];
  const skip = new Set([...unusable, ...want]);
  const readers = new StripeReaders(params, (index, range, signal) => io.read(index, range, signal), Math.max(0, layout.stripeCount - 1), {
    skipShards: skip,
    onShardFailure: (index) => badSources.push(index),
  });
  const channels = new Map(want.map((index) => [index, new ChunkChannel(ENCODE_CHUNKS_QUEUED_MAX)]));
  const failed = new Map<number, string>();
  const writes = [...channels].map(([index, channel]) =>
    io.write(index, writeShard({ ...params, shardIndex: index }, channel), layout.fileBytes).catch((error: unknown) => {
      failed.set(index, describe(error));
      channel.abandon(error);
    }),
  );
  try {
    await pumpStripes(params, layout.chunkBytes, layout.stripeCount, readers, channels);
    for (const channel of channels.values()) channel.close();
  } catch (error) {
    for (const channel of channels.values()) channel.fail(error);
    throw error;
  } finally {
    readers.close();
    await Promise.all(writes);
  }
  return { written: want.filter((index) => !failed.has(index)), failed, badSources };
}

/**
 * Each stripe's present chunks are copied, as the pieces the readers delivered, into one scratch
 * for the whole shard set, and only the rebuilt chunks leave it, each copied into a buffer of
 * its own: a channel holds a chunk until its writer has sent it, past the next stripe. (A fresh
 * scratch and a join of every chunk per stripe made about 2.5 MiB of garbage per rebuilt 256 KiB
 * chunk, and each queued chunk, a view, kept its whole 1.5 MiB scratch alive: the gateway
 * reached 425 MiB while rebuilding an emptied node at 77 MB/s.)
 */
async function pumpStripes(params: EncodeParams, chunkBytes: number, stripeCount: number, readers: StripeReaders, channels: ReadonlyMap<number, ChunkChannel>): Promise<void> {
  const codec = new ErasureCodec({ k: params.k, m: params.m });
  const want = [...channels.keys()];
  const scratch = codec.createScratch(chunkBytes);
  for (let stripe = 0; stripe < stripeCount; stripe++) {
    if ([...channels.values()].every((channel) => channel.abandoned)) {
      throw new TesseraError("ERR_WRITE_QUORUM", "every rebuilt shard's write failed");
    }
    const pieces = await readers.readStripePieces(stripe);
    await reconstructFromPieces(codec, scratch, pieces, want);
    await Promise.all(want.map((index) => (channels.get(index) as ChunkChannel).push(Buffer.from(codec.scratchChunk(scratch, index)))));
  }
}
