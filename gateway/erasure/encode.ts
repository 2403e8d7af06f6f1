/**
 * Streaming erasure encode (DESIGN.md, "Data path"): the body is cut into stripes of
 * blockBytes, each stripe into k data chunks plus m parity chunks, and chunk i of every
 * stripe goes to shard writer i at once. Each writer has a bounded channel, so memory is
 * about (k+m) * ENCODE_CHUNKS_QUEUED_MAX chunks per PUT whatever the object size, and the
 * slowest live writer sets the pace. A large PUT holds a share of the gateway's stripe budget
 * (stripe-budget.ts) for its data phase, so many PUTs at once wait instead of adding up.
 */
import { Readable } from "node:stream";
import { assert } from "../../core/assert.js";
import { ErasureCodec, splitChunks } from "../../core/codec.js";
import { TesseraError } from "../../core/errors.js";
import { FixedCutter } from "../../core/fixed-cutter.js";
import { readableChunks } from "../../core/readable-chunks.js";
import { shardLayout, type ShardHeader } from "../../core/shard-format.js";
import { writeShard } from "../../core/shard-stream.js";
import { ChunkChannel } from "./chunk-channel.js";
import { BUDGET_SHARE_BYTES_MIN, PUT_STRIPES_HELD, stripeBudget, stripeSetBytes } from "./stripe-budget.js";

/**
 * Chunks queued per shard writer. One lets the encoder fill stripe s+2 while stripe s+1 waits
 * and stripe s is on the wire; more only adds memory ((k+m) chunks of up to 256 KiB each per
 * step, times every concurrent PUT) without more throughput: the writers, not the encoder,
 * are the slow side.
 */
export const ENCODE_CHUNKS_QUEUED_MAX = 1;

/** What the encoder needs of one shard: everything in the header but the shard index. */
export type EncodeParams = Omit<ShardHeader, "shardIndex">;

/** Writes shard `shardIndex` from `body` (exactly `declaredBytes` bytes); resolves when committed. */
export type ShardSink = (shardIndex: number, body: AsyncIterable<Buffer>, declaredBytes: number) => Promise<void>;

export interface EncodeResult {
  /** Per shard index: undefined if committed, else why it failed. */
  readonly shardErrors: readonly unknown[];
  readonly committed: number;
}

export interface EncodeOptions {
  /** Shards that must commit for the write to count; fewer is ERR_WRITE_QUORUM. */
  readonly writeQuorum: number;
  /**
   * Sees every body piece in order, before it is encoded (MD5, x-amz-checksum-*). A promise
   * returned is awaited before the next piece is read: an offloaded hash applying backpressure.
   */
  readonly observe?: (piece: Buffer) => unknown;
}

export async function encodeObject(body: AsyncIterable<Buffer>, params: EncodeParams, sink: ShardSink, options: EncodeOptions): Promise<EncodeResult> {
  const shardCount = params.k + params.m;
  assert(options.writeQuorum >= params.k && options.writeQuorum <= shardCount, "write quorum between k and k+m");
  const layout = shardLayout({ ...params, shardIndex: 0 });
  const codec = new ErasureCodec({ k: params.k, m: params.m });
  const channels = Array.from({ length: shardCount }, () => new ChunkChannel(ENCODE_CHUNKS_QUEUED_MAX));
  const shardErrors: unknown[] = new Array<unknown>(shardCount).fill(undefined);
  const writes = channels.map((channel, shardIndex) =>
    sink(shardIndex, writeShard({ ...params, shardIndex }, channel), layout.fileBytes).catch((error: unknown) => {
      shardErrors[shardIndex] = error ?? new Error("shard write failed");
      channel.abandon(error);
    }),
  );
  const live = (): number => channels.filter((channel) => !channel.abandoned).length;
  const share = Math.min(stripeSetBytes(params.blockBytes, params.k, params.m, PUT_STRIPES_HELD), stripeSetBytes(params.objectLength, params.k, params.m, 1));
  const release = share < BUDGET_SHARE_BYTES_MIN ? undefined : await stripeBudget.acquire(share);
  try {
    await pumpStripes(body, params, codec, channels, { ...options, live });
    for (const channel of channels) channel.close();
  } catch (error) {
    // The writers' bodies fail mid-shard, so the nodes discard their temporary files.
    for (const channel of channels) channel.fail(error);
    throw error;
  } finally {
    await Promise.all(writes);
    release?.();
  }
  const committed = shardErrors.filter((error) => error === undefined).length;
  if (committed < options.writeQuorum) throw quorumError(committed, options.writeQuorum, shardErrors);
  return { shardErrors, committed };
}

async function pumpStripes(
  body: AsyncIterable<Buffer>,
  params: EncodeParams,
  codec: ErasureCodec,
  channels: ChunkChannel[],
  options: EncodeOptions & { live: () => number },
): Promise<void> {
  const cutter = new FixedCutter();
  const stripes: Buffer[] = [];
  const blockBytes = (): number => params.blockBytes;
  let received = 0;
  let cut = 0;
  let last: Buffer | undefined;
  // A request stream's own iterator would join buffered network reads into copies.
  for await (const piece of body instanceof Readable ? readableChunks(body) : body) {
    received += piece.length;
    if (received > params.objectLength) throw lengthError(params.objectLength, `more than`);
    const observed = options.observe?.(piece);
    if (observed instanceof Promise) await observed;
    cutter.feed(piece, blockBytes, (stripe) => stripes.push(stripe));
    // The object's last stripe waits until the body has ended cleanly: a body that fails its
    // signature or hash at the very end must not leave a complete shard on any node. Only
    // the last one: a shard is complete only with its last frame, so earlier stripes go at
    // once instead of each waiting for the next (one stripe less held per PUT).
    for (let stripe = stripes.shift(); stripe !== undefined; stripe = stripes.shift()) {
      cut += 1;
      if (cut * params.blockBytes === params.objectLength) last = stripe;
      else await encodeStripe(stripe, codec, channels, options);
    }
  }
  if (received < params.objectLength) throw lengthError(params.objectLength, `only ${received} of`);
  if (last !== undefined) await encodeStripe(last, codec, channels, options);
  const rest = cutter.drain();
  if (rest.length > 0) {
    const padded = Buffer.alloc(params.blockBytes);
    rest.copy(padded);
    await encodeStripe(padded, codec, channels, options);
  }
}

async function encodeStripe(stripe: Buffer, codec: ErasureCodec, channels: ChunkChannel[], options: EncodeOptions & { live: () => number }): Promise<void> {
  if (options.live() < options.writeQuorum) throw new TesseraError("ERR_WRITE_QUORUM", `only ${options.live()} shard writers left, ${options.writeQuorum} needed`);
  const chunkBytes = stripe.length / codec.k;
  const parity = codec.m === 0 ? Buffer.alloc(0) : await codec.encodeStripe(stripe);
  const chunks = [...splitChunks(stripe, chunkBytes), ...(codec.m === 0 ? [] : splitChunks(parity, chunkBytes))];
  assert(chunks.length === channels.length, "one chunk per shard");
  await Promise.all(channels.map((channel, index) => channel.push(chunks[index] as Buffer)));
}

/** A body that carried more or fewer bytes than its declared length (also encodeInline's). */
export function lengthError(declared: number, what: string): TesseraError {
  return new TesseraError("ERR_INCOMPLETE_BODY", `request body carried ${what} the ${declared} bytes declared`, { declared });
}

function quorumError(committed: number, quorum: number, errors: readonly unknown[]): TesseraError {
  const reasons = errors.flatMap((error, index) => (error === undefined ? [] : [`shard ${index}: ${error instanceof Error ? error.message : String(error)}`]));
  return new TesseraError("ERR_WRITE_QUORUM", `${committed} shards committed, ${quorum} needed (${reasons.join("; ")})`, { committed, quorum });
}
