/**
 * Shard files on one disk: where each lives, the crash-safe write, verified reads, delete.
 *
 *   <disk>/shards/<objectId[0..2]>/<objectId>/<versionId>.<partNumber>.<shardIndex>
 *
 * Every path component comes from a validated hex id or integer, never from a client's
 * string, and is checked to stay inside the disk. A write goes to a fresh file in the disk's
 * own tmp/ (same file system), is verified as it streams, fsynced, renamed into place and
 * the directory fsynced: after a crash at any moment a shard is either absent or complete,
 * and the temp file is removed at the next start. Where the disk takes it, shard files are
 * written and read with O_DIRECT (direct-io.ts), in aligned blocks from aligned buffers.
 */
import { fstatSync, promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { assert } from "../core/assert.js";
import { TesseraError } from "../core/errors.js";
import type { ShardId, StripeRange } from "../core/storage-api.js";
import { DIRECT_IO_ALIGNMENT, DIRECT_READ_FLAGS, DIRECT_WRITE_FLAGS, alignDown, alignUp, alignedBuffer } from "./direct-io.js";
import { isMissing, syncDirectory, type Disk } from "./disk.js";
import { alignedReadBytes, readVerifiedShard, receiveShard, validateShardId, type ShardSource } from "./shard-verify.js";

const KiB = 1024;

/**
 * Bytes per positional read (rounded down to whole frames, at least one). Larger means fewer
 * syscalls and promise round trips; a read stream holds about one read plus one frame, so
 * memory per stream stays bounded whatever the shard size. 1 MiB plus room for the
 * trailers, so four chunks of the default 1 MiB stripe (256 KiB + checksum each) fit one read.
 */
export const SHARD_READ_BYTES = 1024 * KiB + 4 * KiB;
/**
 * Body bytes gathered (copied) into one buffer before one write: network pieces are small (at
 * most 64 KiB), and one syscall per MiB keeps the thread pool and the event loop free; it
 * bounds memory per write too. The pieces are copied, not held: a piece held until its batch
 * is written (over 100 ms at 8 MB/s per stream) outlives two scavenges, is promoted, and is
 * freed only by a full GC (measured, 12 uploads at once: 29-46 full GCs per 800 MB held,
 * 2-3 copied; node CPU 3.2-4.7 -> 2.4-3.0 s per shard GB). The copy costs far less.
 */
export const WRITE_BATCH_BYTES = 1024 * KiB;
assert(WRITE_BATCH_BYTES % DIRECT_IO_ALIGNMENT === 0, "a full write batch is whole O_DIRECT blocks");
/**
 * Smallest write buffer. Write buffers come in powers of two from here up to WRITE_BATCH_BYTES,
 * the smallest that holds the shard (or a whole batch, for larger shards): a small shard does
 * not hold a 1 MiB buffer, and every size is reused. Shard files exist only for objects over
 * the inline limit (64 KiB), so their shards are rarely much smaller than this.
 */
const WRITE_BUFFER_BYTES_MIN = 64 * KiB;
assert(Number.isInteger(Math.log2(WRITE_BATCH_BYTES / WRITE_BUFFER_BYTES_MIN)), "write buffer sizes double from the smallest up to a batch");
/**
 * Idle write buffers kept for reuse per size: at most 8 × (64 KiB + ... + 1 MiB), about 16 MiB.
 * Reuse matters beyond allocation cost: the aligned buffers' memory is not counted by V8
 * (direct-io.ts), so fresh ones per write would be freed only when a GC comes for other reasons.
 */
const POOLED_WRITE_BUFFERS_MAX = 8;
/** Rename attempts when a concurrent delete removed the object's directory under a write. */
const RENAME_ATTEMPTS_MAX = 3;
/** Reads at least this long use a recycled buffer (below, the header: a small fresh buffer). */
const POOLED_READ_BYTES_MIN = 64 * KiB;
/** Idle read buffers kept for reuse per process: 16 MiB at most. */
const POOLED_READ_BUFFERS_MAX = 16;
/**
 * Size of a pooled read buffer: one read of SHARD_READ_BYTES plus, for O_DIRECT, the aligned
 * blocks around it (up to one block before its start and one after its end).
 */
const POOLED_READ_BUFFER_BYTES = SHARD_READ_BYTES + 2 * DIRECT_IO_ALIGNMENT;

/**
 * Read buffers of SHARD_READ_BYTES, recycled: a fresh 1 MiB buffer per read costs V8 a full
 * mark of the heap every few dozen MiB read ("external memory pressure"), a third of the
 * node's CPU on large GETs. A buffer comes back only when its consumer hands back the
 * very piece it was given, whole (releaseShardPiece, after the socket took the bytes); a
 * consumer that never does so simply keeps it, and the garbage collector frees it.
 */
const idleReadBuffers: Buffer[] = [];
/** Pooled buffers out with a consumer, by their memory: where the piece lent starts, and its length. */
const lentReadBuffers = new WeakMap<ArrayBufferLike, { readonly offset: number; readonly length: number }>();

function isPooled(length: number): boolean {
  return length >= POOLED_READ_BYTES_MIN && length <= POOLED_READ_BUFFER_BYTES;
}

/**
 * A buffer for a read of `length` bytes: a recycled one of POOLED_READ_BUFFER_BYTES when
 * pooled. Pooled and direct reads get aligned memory (O_DIRECT's rule); small buffered ones
 * a plain buffer.
 */
function takeReadBuffer(length: number, direct: boolean): Buffer {
  if (isPooled(length)) return idleReadBuffers.pop() ?? alignedBuffer(POOLED_READ_BUFFER_BYTES);
  return direct ? alignedBuffer(length) : Buffer.allocUnsafe(length);
}

function recycleReadBuffer(buffer: Buffer): void {
  const pooled = buffer.buffer.byteLength === POOLED_READ_BUFFER_BYTES;
  if (pooled && idleReadBuffers.length < POOLED_READ_BUFFERS_MAX) idleReadBuffers.push(Buffer.from(buffer.buffer, 0, POOLED_READ_BUFFER_BYTES));
}

/**
 * Gives back a piece yielded by readShardFile once nothing refers to it any more (the socket
 * write that sent it completed): its buffer serves a later read. Only a piece exactly as it
 * was yielded, once, returns its buffer; anything else (a piece of a memory node, a part of
 * a piece, a second release) is left to the garbage collector. Never call it for a piece
 * that is still in use.
 */
export function releaseShardPiece(piece: Buffer): void {
  const lent = lentReadBuffers.get(piece.buffer);
  if (lent === undefined || piece.byteOffset !== lent.offset || piece.length !== lent.length) return;
  lentReadBuffers.delete(piece.buffer);
  recycleReadBuffer(piece);
}

export function shardPath(disk: Disk, shard: ShardId): string {
  validateShardId(shard);
  const file = path.join(disk.shardsDir, shard.objectId.slice(0, 2), shard.objectId, `${shard.versionId}.${shard.partNumber}.${shard.shardIndex}`);
  assert(file.startsWith(disk.shardsDir + path.sep), "validated shard ids never name a path outside the disk");
  return file;
}

function shardName(shard: ShardId): string {
  return `${shard.objectId}/${shard.versionId} part ${shard.partNumber} shard ${shard.shardIndex}`;
}

export function shardNotFound(diskId: string, shard: ShardId): TesseraError {
  return new TesseraError("ERR_NOT_FOUND", `disk ${diskId} has no shard ${shardName(shard)}`, { diskId, ...shard });
}

/** Idle aligned write buffers by their size (a power of two, see WRITE_BUFFER_BYTES_MIN). */
const idleWriteBuffers = new Map<number, Buffer[]>();

/** A write buffer for a shard of `declaredBytes`: the smallest size class that holds it (or a batch). */
function takeWriteBuffer(declaredBytes: number): Buffer {
  let bytes = WRITE_BUFFER_BYTES_MIN;
  while (bytes < declaredBytes && bytes < WRITE_BATCH_BYTES) bytes *= 2;
  return idleWriteBuffers.get(bytes)?.pop() ?? alignedBuffer(bytes);
}

function recycleWriteBuffer(buffer: Buffer): void {
  const idle = idleWriteBuffers.get(buffer.length) ?? [];
  if (idle.length < POOLED_WRITE_BUFFERS_MAX) idle.push(buffer);
  idleWriteBuffers.set(buffer.length, idle);
}

/** Writes `length` bytes of `buffer` at the file's current position, finishing a short write. */
async function writeAll(handle: FileHandle, buffer: Buffer, length: number): Promise<void> {
  for (let offset = 0; offset < length; ) {
    const written = (await handle.write(buffer, offset, length - offset, null)).bytesWritten;
    assert(written > 0, "a write to a regular file makes progress or fails");
    offset += written;
  }
}

async function receiveIntoTemp(disk: Disk, temp: string, shard: ShardId, body: AsyncIterable<Uint8Array>, declaredBytes: number, signal: AbortSignal | undefined): Promise<void> {
  const direct = disk.directIo;
  const handle = await disk.io("open-write", temp, () => fs.open(temp, direct ? DIRECT_WRITE_FLAGS : "wx", 0o644));
  // Aligned memory either way, as O_DIRECT needs; a whole number of blocks, since every size
  // class is.
  const buffer = takeWriteBuffer(declaredBytes);
  let filled = 0;
  let written = 0;
  const flush = async (): Promise<void> => {
    const length = filled;
    filled = 0;
    if (length === 0) return;
    // O_DIRECT writes whole blocks. Only a shard's last write can be partial (a full batch is
    // whole blocks): it is padded with zeros here and the file cut back to its length below.
    const bytes = direct ? alignUp(length) : length;
    assert(written % DIRECT_IO_ALIGNMENT === 0 || !direct, "only the last direct write is padded");
    buffer.fill(0, length, bytes);
    await disk.io("write", temp, () => writeAll(handle, buffer, bytes));
    written += length;
  };
  try {
    await receiveShard(
      body,
      shard,
      declaredBytes,
      async (bytes) => {
        for (let at = 0; at < bytes.length; ) {
          const copied = bytes.copy(buffer, filled, at);
          filled += copied;
          at += copied;
          if (filled === buffer.length) await flush();
        }
      },
      signal,
    );
    await flush();
    if (direct && written % DIRECT_IO_ALIGNMENT !== 0) await disk.io("write", temp, () => handle.truncate(written));
    await disk.io("fsync", temp, () => handle.sync());
  } finally {
    await handle.close();
    // receiveShard awaits its sink before it reads on or returns: no write uses the buffer now.
    recycleWriteBuffer(buffer);
  }
}

async function sizeIfPresent(file: string): Promise<number | undefined> {
  try {
    return (await fs.stat(file)).size;
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Renames a complete, fsynced temp file into place and fsyncs every directory it touched. */
async function commitTemp(disk: Disk, temp: string, file: string, bytes: number): Promise<void> {
  const objectDir = path.dirname(file);
  const prefixDir = path.dirname(objectDir);
  for (let attempt = 1; ; attempt++) {
    const created = await disk.io("mkdir", objectDir, () => fs.mkdir(objectDir, { recursive: true }));
    const replacedBytes = await disk.io("rename", file, () => sizeIfPresent(file));
    try {
      await disk.io("rename", file, () => fs.rename(temp, file));
    } catch (error) {
      // A delete of the object's last shard may remove its directory between mkdir and rename.
      if (isMissing(error) && attempt < RENAME_ATTEMPTS_MAX) continue;
      throw error;
    }
    await disk.io("fsync", objectDir, () => syncDirectory(objectDir));
    if (created !== undefined) await disk.io("fsync", prefixDir, () => syncDirectory(prefixDir));
    if (created === prefixDir) await disk.io("fsync", disk.shardsDir, () => syncDirectory(disk.shardsDir));
    disk.noteShardStored(bytes, replacedBytes);
    return;
  }
}

/**
 * Stores one shard crash-safely (see the file comment). Refused before touching the disk if
 * the disk is failed or has no room; any fault while streaming (bad checksum, wrong length,
 * abort, I/O error) removes the temp file and leaves an existing shard untouched.
 */
export async function writeShardFile(disk: Disk, shard: ShardId, body: AsyncIterable<Uint8Array>, declaredBytes: number, signal?: AbortSignal): Promise<void> {
  const file = shardPath(disk, shard);
  await disk.requireWritable();
  const release = await disk.reserve(declaredBytes);
  const temp = disk.tempPath();
  try {
    await receiveIntoTemp(disk, temp, shard, body, declaredBytes, signal);
    await commitTemp(disk, temp, file, declaredBytes);
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw error;
  } finally {
    release();
  }
}

/**
 * Bytes [position, position + length) of an open shard file, or fewer at its end; undefined
 * when none are there (the file shrank under us: the parser reports it truncated). A direct
 * read covers the aligned blocks around them and hands out their part. The buffer goes back
 * to the pool if the read fails or finds nothing.
 */
async function readPiece(disk: Disk, handle: FileHandle, file: string, direct: boolean, position: number, length: number): Promise<Buffer | undefined> {
  const from = direct ? alignDown(position) : position;
  const skip = position - from;
  const span = direct ? alignUp(skip + length) : length;
  const buffer = takeReadBuffer(span, direct);
  let bytesRead: number;
  try {
    ({ bytesRead } = await disk.io("read", file, () => handle.read(buffer, 0, span, from)));
  } catch (error) {
    recycleReadBuffer(buffer);
    throw error;
  }
  // A direct read past the piece (the blocks around it) or short at the end of the file.
  const got = Math.min(bytesRead - skip, length);
  if (got > 0) return buffer.subarray(skip, skip + got);
  recycleReadBuffer(buffer);
  return undefined;
}

/**
 * Hands `piece` to a consumer: from here a pooled buffer is the consumer's until it gives this
 * very piece back (releaseShardPiece), or forever.
 */
function lend(piece: Buffer): Buffer {
  if (piece.buffer.byteLength === POOLED_READ_BUFFER_BYTES) lentReadBuffers.set(piece.buffer, { offset: piece.byteOffset, length: piece.length });
  return piece;
}

/** Reads [start, end) of an open shard file in pieces of about SHARD_READ_BYTES (whole `alignBytes` frames). */
async function* readRange(disk: Disk, handle: FileHandle, file: string, direct: boolean, start: number, end: number, alignBytes?: number): AsyncGenerator<Buffer> {
  const readBytes = alignedReadBytes(SHARD_READ_BYTES, alignBytes);
  for (let position = start; position < end; ) {
    const piece = await readPiece(disk, handle, file, direct, position, Math.min(readBytes, end - position));
    if (piece === undefined) return;
    yield lend(piece);
    position += piece.length;
  }
}

/**
 * A shard file of at most SHARD_READ_BYTES read once, whole, at the first read; every read of
 * it (the header, then the frames) is served from that one buffer. A shard read through the
 * libuv pool costs a round trip per call (about 50 µs of CPU on the 2-core VM of issue 7,
 * mostly the wake-ups), and a direct read a device request: the header's own read was a
 * second of each for every shard of an object up to about 4 MiB. The frames' piece is lent as
 * readRange lends its pieces; the header's is copied by its reader (shard-verify.ts reads the
 * header, then the frames, each once), so it holds nothing.
 */
function wholeFileSource(disk: Disk, handle: FileHandle, file: string, direct: boolean, size: number): ShardSource {
  let whole: Promise<Buffer | undefined> | undefined;
  let lent = false;
  return {
    size: async () => size,
    async *read(start, end) {
      assert(!lent, "a whole-file source is read for its header, then for its frames, and no more: its buffer went with the frames");
      if (end <= start) return;
      const bytes = await (whole ??= readPiece(disk, handle, file, direct, 0, size));
      const piece = bytes?.subarray(start, Math.min(end, bytes.length));
      if (piece === undefined || piece.length === 0) return;
      if (start === 0) {
        yield piece;
        return;
      }
      // The frames' piece (the one read not starting at the header) carries the buffer.
      lent = true;
      yield lend(piece);
    },
  };
}

/** Streams a shard file, whole or a range of frames, verified frame by frame (shard-verify.ts). */
export async function* readShardFile(disk: Disk, shard: ShardId, range?: StripeRange): AsyncGenerator<Buffer> {
  const file = shardPath(disk, shard);
  disk.requireUsable();
  const direct = disk.directIo;
  let handle: FileHandle;
  try {
    handle = await disk.io("open-read", file, () => fs.open(file, direct ? DIRECT_READ_FLAGS : "r"));
  } catch (error) {
    if (isMissing(error)) throw shardNotFound(disk.id, shard);
    throw error;
  }
  try {
    // fstat of an open descriptor reads the inode already in memory: no disk I/O, so it runs
    // here rather than as a round trip through the libuv pool.
    const size = await disk.io("read", file, async () => fstatSync(handle.fd).size);
    const source: ShardSource =
      size <= SHARD_READ_BYTES
        ? wholeFileSource(disk, handle, file, direct, size)
        : { size: async () => size, read: (start, end, alignBytes) => readRange(disk, handle, file, direct, start, end, alignBytes) };
    yield* readVerifiedShard(source, shard, range);
  } finally {
    await handle.close();
  }
}

/** Removes a shard; false if it was not there. The object's directory goes once empty. */
export async function deleteShardFile(disk: Disk, shard: ShardId): Promise<boolean> {
  const file = shardPath(disk, shard);
  const objectDir = path.dirname(file);
  await disk.requireWritable();
  let bytes: number;
  try {
    bytes = (await disk.io("unlink", file, () => fs.stat(file))).size;
    await disk.io("unlink", file, () => fs.unlink(file));
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
  disk.noteShardRemoved(bytes);
  await disk.io("fsync", objectDir, () => syncDirectory(objectDir));
  // ENOTEMPTY (other shards, or a write just renamed one in) leaves it: harmless either way.
  await fs.rmdir(objectDir).catch(() => undefined);
  return true;
}
