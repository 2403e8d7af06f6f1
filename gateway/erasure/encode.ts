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
import { BUDGET_SHARE_BYTES_MIN, objectShareBytes, PUT_STRIPES_HELD, stripeBudget } from "./stripe-budget.js";

/**
 * Chunks queued per shard writer. One lets the encoder fill stripe s+2 while stripe s+1 waits
 * and stripe s is on the wire; more only adds memory ((k+m) chunks of up to 256 KiB each per
 * step, times every concurrent PUT) without more throughput: the writers, not the encoder,
 * are the slow side.
 */
export const ENCODE_CHUNKS_QUEUED_MAX = 1;

/**
 * Chunks a writer must have taken after chunk s before s's memory is used again. undici takes
 * a body's next piece only once the socket drained the last one (a chunk is larger than the
 * socket's high-water mark, so every chunk write waits for 'drain'), so chunk s is in the
 * kernel when s + 1 is taken; one more is margin. A storage node verifies every chunk's
 * checksum as it arrives, so a chunk changed on the wire fails that shard, never stores it.
 */
export const FLUSH_LAG_CHUNKS = 2;
/**
 * Stripe slots of one PUT (StripeBuffers): the encoder is at most two stripes ahead of the
 * slowest writer (ENCODE_CHUNKS_QUEUED_MAX plus the chunk in flight), so a slot used by stripe
 * s is free again when stripe s + 4 comes: with prompt writers no stripe allocates. 6 MiB at
 * 4+2 with 1 MiB stripes, per PUT: the stripe budget's share for a PUT (PUT_STRIPES_HELD).
 */
export const STRIPE_BUFFERS_PER_PUT = PUT_STRIPES_HELD;
assert(STRIPE_BUFFERS_PER_PUT >= FLUSH_LAG_CHUNKS + 2, "a slot's writers are normally past it when its turn comes again");
/**
 * Chunks smaller than this are not reused: the guarantee above needs a chunk above the
 * socket's high-water mark (16 KiB on Node 20, 64 KiB on 22). With the default 1 MiB stripe at
 * 4+2 a chunk is 256 KiB; an object of one stripe never reuses anything anyway.
 */
export const REUSED_CHUNK_BYTES_MIN = 128 * 1024;

/** What the encoder needs of one shard: everything in the header but the shard index. */
export type EncodeParams = Omit<ShardHeader, "shardIndex">;

/**
 * Writes shard `shardIndex` from `body` (exactly `declaredBytes` bytes); resolves when committed.
 * The memory of a chunk the body yields is used again for a later stripe once the sink has
 * taken FLUSH_LAG_CHUNKS more chunks (StripeBuffers): a sink must have sent, written or copied
 * each chunk by then. undici does (it takes a body's next piece only when the socket has
 * drained the last); a storage node's writeShard called in process (tests) copies or writes
 * each piece before it takes the next (storage-node/shard-verify.ts, receiveShard).
 */
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
  const share = objectShareBytes(params, PUT_STRIPES_HELD);
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
  const buffers = new StripeBuffers(channels, params.blockBytes, params.k, params.m);
  let received = 0;
  let emitted = 0;
  let cut = 0;
  let last: Buffer | undefined;
  // A request stream's own iterator would join buffered network reads into copies.
  for await (const piece of body instanceof Readable ? readableChunks(body) : body) {
    received += piece.length;
    if (received > params.objectLength) throw lengthError(params.objectLength, `more than`);
    const observed = options.observe?.(piece);
    if (observed instanceof Promise) await observed;
    cutter.feed(piece, blockBytes, (stripe) => (emitted += 1, stripes.push(stripe)), () => buffers.stripe(emitted));
    // The object's last stripe waits until the body has ended cleanly: a body that fails its
    // signature or hash at the very end must not leave a complete shard on any node. Only
    // the last one: a shard is complete only with its last frame, so earlier stripes go at
    // once instead of each waiting for the next (one stripe less held per PUT).
    for (let stripe = stripes.shift(); stripe !== undefined; stripe = stripes.shift()) {
      cut += 1;
      if (cut * params.blockBytes === params.objectLength) last = stripe;
      else await encodeStripe(stripe, codec, channels, options, buffers.parity(cut - 1));
    }
  }
  if (received < params.objectLength) throw lengthError(params.objectLength, `only ${received} of`);
  if (last !== undefined) await encodeStripe(last, codec, channels, options, buffers.parity(cut - 1));
  const rest = cutter.drain();
  if (rest.length > 0) {
    const padded = Buffer.alloc(params.blockBytes);
    rest.copy(padded);
    await encodeStripe(padded, codec, channels, options);
  }
}

async function encodeStripe(stripe: Buffer, codec: ErasureCodec, channels: ChunkChannel[], options: EncodeOptions & { live: () => number }, parityBuffer?: Buffer): Promise<void> {
  if (options.live() < options.writeQuorum) throw new TesseraError("ERR_WRITE_QUORUM", `only ${options.live()} shard writers left, ${options.writeQuorum} needed`);
  const chunkBytes = stripe.length / codec.k;
  const parity = codec.m === 0 ? Buffer.alloc(0) : await codec.encodeStripe(stripe, parityBuffer);
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

type StripeSlot = { stripe: number; joined?: Buffer; parity?: Buffer };

/**
 * The joined-stripe and parity buffers of one PUT, reused round robin instead of allocated
 * per stripe. Each stripe allocated 1.5 MiB at 4+2 (a 1 MiB join of the body's pieces, 512 KiB
 * of parity), memory V8 counts as external: that churn, hundreds of MB/s, kept the gateway's
 * major GCs running. A slot is reused only when every live writer has taken FLUSH_LAG_CHUNKS
 * chunks past the stripe that used it; otherwise fresh buffers replace its own (never a wait).
 * A writer that gave up (abandoned) does not count: its request is dead, whatever its socket
 * still sends.
 */
class StripeBuffers {
  readonly #channels: readonly ChunkChannel[];
  readonly #blockBytes: number;
  readonly #parityBytes: number;
  readonly #reuse: boolean;
  readonly #slots: StripeSlot[] = Array.from({ length: STRIPE_BUFFERS_PER_PUT }, () => ({ stripe: -1 }));

  constructor(channels: readonly ChunkChannel[], blockBytes: number, k: number, m: number) {
    this.#channels = channels;
    this.#blockBytes = blockBytes;
    this.#parityBytes = (m * blockBytes) / k;
    this.#reuse = blockBytes / k >= REUSED_CHUNK_BYTES_MIN;
  }

  /** Memory for joining stripe `index` (0-based). */
  stripe(index: number): Buffer {
    const slot = this.#slot(index);
    slot.joined ??= Buffer.allocUnsafe(this.#blockBytes);
    return slot.joined;
  }

  /** Memory for stripe `index`'s parity (m chunks). */
  parity(index: number): Buffer {
    const slot = this.#slot(index);
    slot.parity ??= Buffer.allocUnsafe(this.#parityBytes);
    return slot.parity;
  }

  #slot(index: number): StripeSlot {
    const slot = this.#slots[index % STRIPE_BUFFERS_PER_PUT] as StripeSlot;
    if (slot.stripe === index) return slot;
    // Stripe s's chunk is the (s + 1)th each writer takes.
    const free = this.#reuse && slot.stripe >= 0 && this.#channels.every((channel) => channel.abandoned || channel.taken >= slot.stripe + 1 + FLUSH_LAG_CHUNKS);
    if (!free) {
      delete slot.joined;
      delete slot.parity;
    }
    slot.stripe = index;
    return slot;
  }
}
