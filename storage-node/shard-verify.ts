/**
 * The checks every adapter applies to shards, whatever holds the bytes (files or memory):
 * shard ids, the upload path (exact declared length, header identity, every chunk's
 * checksum) and the read path (bytes are released only once verified, so a corrupt chunk
 * ends the stream before any of its bytes leave).
 */
import { assert } from "../core/assert.js";
import { TesseraError, requireArgument } from "../core/errors.js";
import { PART_NUMBER_MAX, SHARD_FILE_BYTES_MAX, SHARD_HEADER_BYTES, SHARD_INDEX_MAX } from "../core/limits.js";
import { decodeShardHeader, frameOffset, shardLayout, type ShardHeader, type ShardIdentity } from "../core/shard-format.js";
import { ShardChecker, ShardParser } from "../core/shard-stream.js";
import { HEX_ID_PATTERN, type ShardId, type StripeRange } from "../core/storage-api.js";

export { PART_NUMBER_MAX, SHARD_FILE_BYTES_MAX, SHARD_INDEX_MAX };

export function validateShardId(shard: ShardId): void {
  requireArgument(typeof shard === "object" && shard !== null, "shard", "must be an object");
  requireArgument(typeof shard.objectId === "string" && HEX_ID_PATTERN.test(shard.objectId), "shard.objectId", `must be 32 lowercase hex characters, got ${JSON.stringify(shard.objectId)}`);
  requireArgument(typeof shard.versionId === "string" && HEX_ID_PATTERN.test(shard.versionId), "shard.versionId", `must be 32 lowercase hex characters, got ${JSON.stringify(shard.versionId)}`);
  requireArgument(Number.isInteger(shard.partNumber) && shard.partNumber >= 0 && shard.partNumber <= PART_NUMBER_MAX, "shard.partNumber", `must be an integer in 0..${PART_NUMBER_MAX}, got ${shard.partNumber}`);
  requireArgument(Number.isInteger(shard.shardIndex) && shard.shardIndex >= 0 && shard.shardIndex <= SHARD_INDEX_MAX, "shard.shardIndex", `must be an integer in 0..${SHARD_INDEX_MAX}, got ${shard.shardIndex}`);
}

/** What the shard's header must say: a file or body for another shard is never accepted. */
export function shardIdentity(shard: ShardId): ShardIdentity {
  return { objectId: Buffer.from(shard.objectId, "hex"), versionId: Buffer.from(shard.versionId, "hex"), partNumber: shard.partNumber, shardIndex: shard.shardIndex };
}

export function validateDeclaredBytes(declaredBytes: number): void {
  requireArgument(
    Number.isSafeInteger(declaredBytes) && declaredBytes >= SHARD_HEADER_BYTES && declaredBytes <= SHARD_FILE_BYTES_MAX,
    "declaredBytes",
    `must be an integer in ${SHARD_HEADER_BYTES}..${SHARD_FILE_BYTES_MAX}, got ${declaredBytes}`,
  );
}

function truncated(what: string, expectedBytes: number, receivedBytes: number): TesseraError {
  return new TesseraError("ERR_SHARD_TRUNCATED", `${what}: ${receivedBytes} of ${expectedBytes} bytes`, { expectedBytes, receivedBytes });
}

function tooLong(what: string, expectedBytes: number, receivedBytes: number): TesseraError {
  return new TesseraError("ERR_SHARD_TOO_LONG", `${what}: ${receivedBytes} bytes, more than ${expectedBytes}`, { expectedBytes, receivedBytes });
}

/** A header whose file length differs from the declared length fails at once, not at the end. */
function checkDeclaredLength(header: ShardHeader, declaredBytes: number): void {
  const { fileBytes } = shardLayout(header);
  if (declaredBytes < fileBytes) throw truncated("declared shard length (its header says more)", fileBytes, declaredBytes);
  if (declaredBytes > fileBytes) throw tooLong("declared shard length (its header says less)", fileBytes, declaredBytes);
}

/**
 * Streams a shard upload through every check into `sink`, one piece at a time (bounded
 * memory: `sink` is awaited before the next piece is pulled). Resolves with the header once
 * exactly `declaredBytes` arrived and every chunk verified; any fault rejects, and the
 * caller discards what the sink received. `signal` aborts the transfer.
 */
export async function receiveShard(
  body: AsyncIterable<Uint8Array>,
  shard: ShardId,
  declaredBytes: number,
  sink: (bytes: Buffer) => Promise<void>,
  signal?: AbortSignal,
): Promise<ShardHeader> {
  // One plain loop, no stream pipeline: per network read (about 40 KiB) every layer of
  // streams and async iterators cost more CPU than the checks themselves.
  // The checker verifies every chunk as its pieces pass, without joining them into frames.
  const parser = new ShardChecker(shardIdentity(shard));
  const iterator = body[Symbol.asyncIterator]();
  const pieces = new AbortableNext(iterator, signal);
  let received = 0;
  let lengthChecked = false;
  let ended = false;
  try {
    for (;;) {
      const next = await pieces.next();
      if (next.done === true) break;
      const piece = next.value;
      const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      received += bytes.length;
      if (received > declaredBytes) throw tooLong("shard body", declaredBytes, received);
      parser.push(bytes);
      if (!lengthChecked && parser.header !== undefined) {
        checkDeclaredLength(parser.header, declaredBytes);
        lengthChecked = true;
      }
      // The sink is awaited before the next read, so no write lands after a failure returns.
      await sink(bytes);
      pieces.throwIfAborted();
    }
    ended = true;
  } finally {
    pieces.dispose();
    if (!ended) void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
  if (received < declaredBytes) throw truncated("shard body", declaredBytes, received);
  parser.end();
  const header = parser.header;
  assert(header !== undefined && lengthChecked, "a shard that verified to its end had its header checked");
  return header;
}

/**
 * `iterator.next()`, rejected as soon as `signal` aborts: a body stalled in its own await
 * must not hold an aborted write. One abort listener for the whole transfer, so nothing
 * piles up per piece (a race against one long-lived promise would add a reaction to it
 * for every piece until the transfer ends).
 */
class AbortableNext<T> {
  readonly #iterator: AsyncIterator<T>;
  readonly #signal: AbortSignal | undefined;
  #abortError: TesseraError | undefined;
  #rejectPending: ((error: unknown) => void) | undefined;
  readonly #onAbort = (): void => {
    const signal = this.#signal;
    assert(signal !== undefined, "only a signal aborts");
    this.#abortError ??= new TesseraError("ERR_NODE_UNAVAILABLE", "shard write aborted", { reason: String(signal.reason) });
    this.#rejectPending?.(this.#abortError);
  };

  constructor(iterator: AsyncIterator<T>, signal: AbortSignal | undefined) {
    this.#iterator = iterator;
    this.#signal = signal;
    if (signal?.aborted === true) this.#onAbort();
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#abortError !== undefined) return Promise.reject(this.#abortError);
    if (this.#signal === undefined) return this.#iterator.next();
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      this.#rejectPending = reject;
      this.#iterator.next().then(resolve, reject);
    });
  }

  throwIfAborted(): void {
    if (this.#abortError !== undefined) throw this.#abortError;
  }

  dispose(): void {
    this.#rejectPending = undefined;
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}

/** Where a shard's bytes are read from: a file, or a buffer in memory. */
export interface ShardSource {
  /** The shard's total length in bytes. */
  size(): Promise<number>;
  /**
   * Bytes [start, end) in pieces of bounded size; with `alignBytes`, each piece but the last
   * a multiple of it (a whole number of frames), so no frame is split across two pieces.
   */
  read(start: number, end: number, alignBytes?: number): AsyncIterable<Buffer>;
}

/** Bytes per read for pieces of whole frames: the most that fit `readBytes`, at least one. */
export function alignedReadBytes(readBytes: number, alignBytes = 1): number {
  assert(Number.isSafeInteger(alignBytes) && alignBytes >= 1 && readBytes >= 1, "positive read sizes");
  return Math.max(1, Math.floor(readBytes / alignBytes)) * alignBytes;
}

/** The header (already read), then the frames in whole-frame pieces: the verifier then never joins a frame from two reads. */
async function* framePieces(source: ShardSource, plan: { start: number; end: number; withHeader: boolean }, frameBytes: number, headerBytes: Buffer): AsyncGenerator<Buffer> {
  if (!plan.withHeader) {
    yield* source.read(plan.start, plan.end, frameBytes);
    return;
  }
  yield headerBytes;
  yield* source.read(SHARD_HEADER_BYTES, plan.end, frameBytes);
}

/** Chooses what to stream: the whole file, or only the frames of `range`. */
function readPlan(header: ShardHeader, range: StripeRange | undefined): { start: number; end: number; parser: ShardParser; withHeader: boolean } {
  const layout = shardLayout(header);
  if (range === undefined) return { start: 0, end: layout.fileBytes, parser: ShardParser.forFile(shardIdentityOf(header)), withHeader: true };
  const { firstStripe, stripeCount } = range;
  requireArgument(Number.isInteger(firstStripe) && firstStripe >= 0, "range.firstStripe", `must be an integer >= 0, got ${firstStripe}`);
  requireArgument(Number.isInteger(stripeCount) && stripeCount >= 1, "range.stripeCount", `must be an integer >= 1, got ${stripeCount}`);
  requireArgument(firstStripe + stripeCount <= layout.stripeCount, "range", `stripes ${firstStripe}..${firstStripe + stripeCount - 1} are outside a shard of ${layout.stripeCount} stripes`);
  return {
    start: frameOffset(layout, firstStripe),
    end: frameOffset(layout, firstStripe + stripeCount),
    parser: ShardParser.forFrames(header, firstStripe, stripeCount),
    withHeader: false,
  };
}

function shardIdentityOf(header: ShardHeader): ShardIdentity {
  return { objectId: header.objectId, versionId: header.versionId, partNumber: header.partNumber, shardIndex: header.shardIndex };
}

async function readHeader(source: ShardSource, size: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of source.read(0, Math.min(size, SHARD_HEADER_BYTES))) pieces.push(piece);
  return Buffer.concat(pieces);
}

/**
 * Streams a stored shard, whole or a range of frames, verified: the header must name
 * `shard` and the file must have exactly the length it declares (checked before any byte is
 * sent), and each frame is released only after its checksum matched. Yields the bytes as
 * stored (header and chunk + trailer frames; frames only for a range).
 */
export async function* readVerifiedShard(source: ShardSource, shard: ShardId, range?: StripeRange): AsyncGenerator<Buffer> {
  const size = await source.size();
  const headerBytes = await readHeader(source, size);
  const header = decodeShardHeader(headerBytes, shardIdentity(shard));
  const { fileBytes, frameBytes } = shardLayout(header);
  if (size < fileBytes) throw truncated(`stored shard ${shard.shardIndex}`, fileBytes, size);
  if (size > fileBytes) throw tooLong(`stored shard ${shard.shardIndex}`, fileBytes, size);
  const plan = readPlan(header, range);
  const leading = plan.withHeader ? SHARD_HEADER_BYTES : 0;
  // Bytes are fed to the parser at most one piece (header or frame) at a time and released
  // only once that piece verified: the good frames before a corrupt one still reach the
  // reader. The verified frames of one read leave as one piece (a view of the read, not a
  // copy); bytes of a frame that began in an earlier read are held until it completes.
  const held: Buffer[] = [];
  let fed = 0;
  for await (const bytes of framePieces(source, plan, frameBytes, headerBytes)) {
    let sent = 0; // bytes[0, sent) are released; bytes[sent, verified) verified, not yet released
    let verified = 0;
    let fault: { error: unknown } | undefined;
    for (let at = 0; at < bytes.length; ) {
      const pieceEnd = fed < leading ? leading : leading + (Math.floor((fed - leading) / frameBytes) + 1) * frameBytes;
      const take = Math.min(bytes.length - at, pieceEnd - fed);
      try {
        plan.parser.push(bytes.subarray(at, at + take));
      } catch (error) {
        fault = { error };
        break;
      }
      fed += take;
      at += take;
      if (fed !== pieceEnd) continue;
      // A frame that began in earlier reads is complete: its first bytes go out first.
      for (const earlier of held.splice(0)) yield earlier;
      verified = at;
    }
    if (verified > sent) yield verified === bytes.length && sent === 0 ? bytes : bytes.subarray(sent, verified);
    sent = verified;
    if (fault !== undefined) throw fault.error;
    if (sent < bytes.length) held.push(bytes.subarray(sent));
  }
  plan.parser.end();
  assert(fed === plan.end - plan.start && held.length === 0, "every byte of the plan was verified and sent");
}
