/**
 * The one contract suite of the StorageNode interface (core/storage-api.ts), run against
 * every adapter: memory, local files, and the HTTP client against a real node process.
 * It uses only the interface, and only names valid over HTTP (S3 bucket names, hex ids).
 * One node per suite: each test works in its own bucket and on its own random ids.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChecksumAlgorithm } from "../core/checksum.js";
import { isTesseraError, type ErrorCode } from "../core/errors.js";
import { SHARD_HEADER_BYTES } from "../core/limits.js";
import { frameOffset, shardLayout, type ShardHeader } from "../core/shard-format.js";
import { writeShard } from "../core/shard-stream.js";
import type { ObjectRecord, ShardId, ShardLocation, StorageNode } from "../core/storage-api.js";
import { Prng, seedFromEnv } from "./prng.js";

export interface ContractContext {
  readonly node: StorageNode;
  /** At least one disk id of `node`. */
  readonly diskIds: readonly string[];
  cleanup(): Promise<void>;
}

const K = 4;
const M = 2;
/** Small stripes give many frames in little data: 4 chunks of 64 bytes. */
const SMALL_BLOCK_BYTES = K * 64;
/** Stripes of 4 chunks of 64 KiB: a shard spans several reads and network pieces. */
const LARGE_BLOCK_BYTES = K * 64 * 1024;

// --- Helpers ------------------------------------------------------------------------------

export interface ContractShard {
  readonly id: ShardId;
  readonly header: ShardHeader;
  /** The whole shard file, as sent and as it must read back. */
  readonly file: Buffer;
}

interface ShardShape {
  readonly objectLength: number;
  readonly blockBytes?: number;
  readonly shardIndex?: number;
  readonly partNumber?: number;
  readonly checksumAlgorithm?: ChecksumAlgorithm;
  /** Reuse this object and version (another shard of the same object). */
  readonly like?: ShardId;
}

function hexId(prng: Prng): string {
  return prng.bytes(16).toString("hex");
}

/** A valid shard file of seeded random chunks (a node never decodes, so any bytes do). */
export async function contractShard(prng: Prng, shape: ShardShape): Promise<ContractShard> {
  const id: ShardId = {
    objectId: shape.like?.objectId ?? hexId(prng),
    versionId: shape.like?.versionId ?? hexId(prng),
    partNumber: shape.partNumber ?? 0,
    shardIndex: shape.shardIndex ?? prng.int(0, K + M - 1),
  };
  const header: ShardHeader = {
    checksumAlgorithm: shape.checksumAlgorithm ?? ChecksumAlgorithm.Crc32c,
    k: K,
    m: M,
    shardIndex: id.shardIndex,
    blockBytes: shape.blockBytes ?? SMALL_BLOCK_BYTES,
    partNumber: id.partNumber,
    objectLength: shape.objectLength,
    objectId: Buffer.from(id.objectId, "hex"),
    versionId: Buffer.from(id.versionId, "hex"),
  };
  const { chunkBytes, stripeCount } = shardLayout(header);
  const chunks = Array.from({ length: stripeCount }, () => prng.bytes(chunkBytes));
  const pieces: Buffer[] = [];
  for await (const piece of writeShard(header, chunks)) pieces.push(piece);
  return { id, header, file: Buffer.concat(pieces) };
}

/** `bytes` in pieces of `pieceBytes`, as a network body arrives. */
export async function* inPieces(bytes: Buffer, pieceBytes = 1000): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += pieceBytes) yield bytes.subarray(offset, offset + pieceBytes);
}

export async function readAll(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of source) {
    expect(Buffer.isBuffer(piece)).toBe(true);
    pieces.push(piece);
  }
  return Buffer.concat(pieces);
}

/** The TesseraError code a promise rejects with ("resolved" if it did not reject). */
export async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | "resolved"> {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    if (isTesseraError(error)) return error.code;
    throw error;
  }
}

/** Reads a stream to its end or error: the bytes received before, and the error's code. */
export async function readOutcome(source: AsyncIterable<Buffer>): Promise<{ bytes: Buffer; code: ErrorCode | "none" }> {
  const pieces: Buffer[] = [];
  try {
    for await (const piece of source) pieces.push(piece);
    return { bytes: Buffer.concat(pieces), code: "none" };
  } catch (error) {
    if (!isTesseraError(error)) throw error;
    return { bytes: Buffer.concat(pieces), code: error.code };
  }
}

function flipByte(bytes: Buffer, offset: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[offset] = (copy[offset] ?? 0) ^ 0x5a;
  return copy;
}

/** An S3-valid bucket name unique to one test. */
function bucketName(prng: Prng, label: string): string {
  return `ct-${label}-${prng.bytes(4).toString("hex")}`;
}

function placement(nodeId: string, diskIds: readonly string[]): ShardLocation[] {
  return Array.from({ length: K + M }, (_, shardIndex) => ({ shardIndex, nodeId, diskId: diskIds[shardIndex % diskIds.length] ?? "d0" }));
}

function versionIdAt(prng: Prng, milliseconds: number): string {
  // HLC layout: 6 bytes of milliseconds, 2 of counter, 8 random; compares in time order.
  const bytes = prng.bytes(16);
  bytes.writeUIntBE(milliseconds, 0, 6);
  bytes.writeUInt16BE(0, 6);
  return bytes.toString("hex");
}

export function contractRecord(prng: Prng, overrides: Partial<ObjectRecord> & Pick<ObjectRecord, "bucket" | "key">): ObjectRecord {
  return {
    versionId: versionIdAt(prng, 1_700_000_000_000 + prng.int(0, 1_000_000)),
    revision: 1,
    objectId: hexId(prng),
    deleteMarker: false,
    size: 1234,
    etag: prng.bytes(16).toString("hex"),
    lastModified: 1_700_000_000_000,
    contentType: "application/octet-stream",
    userMetadata: { owner: "contract", "x-note": "é ✓" },
    systemMetadata: { "cache-control": "no-cache" },
    ec: { k: K, m: M, blockBytes: SMALL_BLOCK_BYTES, checksumAlgorithm: ChecksumAlgorithm.Crc32c },
    placement: placement("n-other", ["d-a", "d-b"]),
    parts: [],
    ...overrides,
  };
}

function utf8Order(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

// --- The suite ----------------------------------------------------------------------------

export function storageContract(name: string, factory: () => Promise<ContractContext>): void {
  describe(`StorageNode contract: ${name}`, () => {
    const seed = seedFromEnv(0x5eed_0400);
    const prng = new Prng(seed);
    let context: ContractContext | undefined;

    beforeAll(async () => {
      console.log(`storage contract (${name}) seed ${seed} (replay with TEST_SEED=${seed})`);
      context = await factory();
      expect(context.diskIds.length).toBeGreaterThan(0);
    });

    afterAll(async () => {
      await context?.cleanup();
    });

    const node = (): StorageNode => {
      if (context === undefined) throw new Error("the factory did not run");
      return context.node;
    };
    const disk = (index = 0): string => context?.diskIds[index] ?? "missing";

    const write = async (shard: ContractShard, diskId = disk(), pieceBytes = 1000): Promise<void> => {
      await node().writeShard(diskId, shard.id, inPieces(shard.file, pieceBytes), shard.file.length);
    };

    shardTests(prng, node, disk, write);
    shardRefusalTests(prng, node, disk, write);
    recordTests(prng, node, disk);
    listingTests(prng, node, disk);
    placementAndBucketTests(prng, node, disk, () => context?.diskIds ?? []);
  });
}

type NodeRef = () => StorageNode;
type DiskRef = (index?: number) => string;
type WriteShard = (shard: ContractShard, diskId?: string, pieceBytes?: number) => Promise<void>;

function shardTests(prng: Prng, node: NodeRef, disk: DiskRef, write: WriteShard): void {
  it("writes shards of every shape and reads them back byte for byte", async () => {
    const shapes: ShardShape[] = [
      { objectLength: 0 },
      { objectLength: 1 },
      { objectLength: SMALL_BLOCK_BYTES },
      { objectLength: 5 * SMALL_BLOCK_BYTES - 3, checksumAlgorithm: ChecksumAlgorithm.Xxh64 },
      { objectLength: 6 * LARGE_BLOCK_BYTES + 12345, blockBytes: LARGE_BLOCK_BYTES },
    ];
    for (const shape of shapes) {
      const shard = await contractShard(prng, shape);
      await write(shard, disk(), prng.int(1, 70_000));
      expect(await readAll(node().readShard(disk(), shard.id))).toEqual(shard.file);
    }
  });

  it("reads every range of stripes as exactly those frames", async () => {
    const shard = await contractShard(prng, { objectLength: 5 * SMALL_BLOCK_BYTES - 8 });
    await write(shard);
    const layout = shardLayout(shard.header);
    expect(layout.stripeCount).toBe(5);
    for (let first = 0; first < layout.stripeCount; first++) {
      for (let count = 1; first + count <= layout.stripeCount; count++) {
        const bytes = await readAll(node().readShard(disk(), shard.id, { firstStripe: first, stripeCount: count }));
        expect(bytes).toEqual(shard.file.subarray(frameOffset(layout, first), frameOffset(layout, first + count)));
      }
    }
  });

  it("reads a range of a large shard that spans several reads", async () => {
    const shard = await contractShard(prng, { objectLength: 7 * LARGE_BLOCK_BYTES, blockBytes: LARGE_BLOCK_BYTES });
    await write(shard, disk(), 64 * 1024);
    const layout = shardLayout(shard.header);
    const bytes = await readAll(node().readShard(disk(), shard.id, { firstStripe: 2, stripeCount: 4 }));
    expect(bytes).toEqual(shard.file.subarray(frameOffset(layout, 2), frameOffset(layout, 6)));
  });

  it("refuses a range outside the shard", async () => {
    const shard = await contractShard(prng, { objectLength: 3 * SMALL_BLOCK_BYTES });
    await write(shard);
    const ranges = [
      { firstStripe: 3, stripeCount: 1 },
      { firstStripe: 2, stripeCount: 2 },
      { firstStripe: 0, stripeCount: 0 },
      { firstStripe: -1, stripeCount: 1 },
    ];
    for (const range of ranges) expect((await readOutcome(node().readShard(disk(), shard.id, range))).code).toBe("ERR_INVALID_ARGUMENT");
  });

  it("keeps parts and shard indexes of one object apart", async () => {
    const plain = await contractShard(prng, { objectLength: 2 * SMALL_BLOCK_BYTES, shardIndex: 1 });
    const part = await contractShard(prng, { objectLength: 3 * SMALL_BLOCK_BYTES, shardIndex: 1, partNumber: 2, like: plain.id });
    const other = await contractShard(prng, { objectLength: SMALL_BLOCK_BYTES, shardIndex: 5, like: plain.id });
    for (const shard of [plain, part, other]) await write(shard);
    for (const shard of [plain, part, other]) expect(await readAll(node().readShard(disk(), shard.id))).toEqual(shard.file);
  });

  it("commits concurrent writes of many shards", async () => {
    const shards = await Promise.all(Array.from({ length: 12 }, () => contractShard(prng, { objectLength: prng.int(0, 9 * SMALL_BLOCK_BYTES) })));
    await Promise.all(shards.map((shard) => write(shard, disk(), prng.int(1, 500))));
    for (const shard of shards) expect(await readAll(node().readShard(disk(), shard.id))).toEqual(shard.file);
  });

  it("accepts a rewrite of the same shard (a retried write)", async () => {
    const shard = await contractShard(prng, { objectLength: 2 * SMALL_BLOCK_BYTES });
    await write(shard);
    await write(shard, disk(), 7);
    expect(await readAll(node().readShard(disk(), shard.id))).toEqual(shard.file);
  });

  it("deletes idempotently; a deleted or never-written shard is ERR_NOT_FOUND", async () => {
    const shard = await contractShard(prng, { objectLength: 2 * SMALL_BLOCK_BYTES });
    const never = await contractShard(prng, { objectLength: 2 * SMALL_BLOCK_BYTES });
    expect((await readOutcome(node().readShard(disk(), never.id))).code).toBe("ERR_NOT_FOUND");
    expect((await readOutcome(node().readShard(disk(), never.id, { firstStripe: 0, stripeCount: 1 }))).code).toBe("ERR_NOT_FOUND");
    expect(await node().deleteShard(disk(), never.id)).toBe(false);
    await write(shard);
    expect(await node().deleteShard(disk(), shard.id)).toBe(true);
    expect(await node().deleteShard(disk(), shard.id)).toBe(false);
    expect((await readOutcome(node().readShard(disk(), shard.id))).code).toBe("ERR_NOT_FOUND");
    await write(shard);
    expect(await readAll(node().readShard(disk(), shard.id))).toEqual(shard.file);
  });

  it("lists every committed shard a page at a time, in a stable order, with its size and commit time", async () => {
    const before = Date.now() - 2_000;
    const written = await Promise.all(Array.from({ length: 7 }, () => contractShard(prng, { objectLength: prng.int(0, 3 * SMALL_BLOCK_BYTES) })));
    for (const shard of written) await write(shard);
    const name = (id: ShardId): string => `${id.objectId}/${id.versionId}.${id.partNumber}.${id.shardIndex}`;
    const listAll = async (): Promise<Map<string, { bytes: number; committedAt: number }>> => {
      const seen = new Map<string, { bytes: number; committedAt: number }>();
      const order: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await node().listShards(disk(), { limit: 3, ...(cursor === undefined ? {} : { cursor }) });
        expect(page.shards.length).toBeLessThanOrEqual(3);
        for (const listed of page.shards) {
          order.push(name(listed.shard));
          seen.set(name(listed.shard), { bytes: listed.bytes, committedAt: listed.committedAt });
        }
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      expect(order).toEqual([...new Set(order)].sort());
      return seen;
    };
    const listed = await listAll();
    for (const shard of written) {
      const entry = listed.get(name(shard.id));
      expect(entry?.bytes).toBe(shard.file.length);
      expect(entry?.committedAt).toBeGreaterThanOrEqual(before);
      expect(entry?.committedAt).toBeLessThanOrEqual(Date.now() + 2_000);
    }
    await node().deleteShard(disk(), (written[0] as ContractShard).id);
    expect((await listAll()).has(name((written[0] as ContractShard).id))).toBe(false);
    await expect(node().listShards(disk(), { limit: 3, cursor: "../../etc" })).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
  });

  it("counts shards and records in health", async () => {
    const before = (await node().health()).disks.find((entry) => entry.diskId === disk());
    const shard = await contractShard(prng, { objectLength: 2 * SMALL_BLOCK_BYTES });
    await write(shard);
    const record = contractRecord(prng, { bucket: bucketName(prng, "health"), key: "counted" });
    await node().putRecord(disk(), record);
    const after = (await node().health()).disks.find((entry) => entry.diskId === disk());
    expect(after?.shardCount).toBe((before?.shardCount ?? NaN) + 1);
    expect(after?.recordCount).toBe((before?.recordCount ?? NaN) + 1);
    await node().deleteShard(disk(), shard.id);
    await node().deleteRecord(disk(), record.bucket, record.key, record.versionId);
    const end = (await node().health()).disks.find((entry) => entry.diskId === disk());
    expect(end?.shardCount).toBe(before?.shardCount);
    expect(end?.recordCount).toBe(before?.recordCount);
  });
}

function shardRefusalTests(prng: Prng, node: NodeRef, disk: DiskRef, write: WriteShard): void {
  const refused = async (shard: ContractShard, body: Buffer, declaredBytes: number): Promise<ErrorCode | "resolved"> => {
    const code = await codeOf(node().writeShard(disk(), shard.id, inPieces(body, 100), declaredBytes));
    // Whatever went wrong, nothing of the refused write is visible.
    expect((await readOutcome(node().readShard(disk(), shard.id))).code).toBe("ERR_NOT_FOUND");
    return code;
  };

  it("refuses a body with a corrupt chunk or trailer (ERR_SHARD_CHECKSUM) and stores nothing", async () => {
    const shard = await contractShard(prng, { objectLength: 4 * SMALL_BLOCK_BYTES });
    const layout = shardLayout(shard.header);
    expect(await refused(shard, flipByte(shard.file, frameOffset(layout, 2) + 10), shard.file.length)).toBe("ERR_SHARD_CHECKSUM");
    expect(await refused(shard, flipByte(shard.file, frameOffset(layout, 4) - 1), shard.file.length)).toBe("ERR_SHARD_CHECKSUM");
  });

  it("refuses truncated and over-long bodies, and lengths that disagree with the header", async () => {
    const shard = await contractShard(prng, { objectLength: 4 * SMALL_BLOCK_BYTES });
    const length = shard.file.length;
    const frameBytes = shardLayout(shard.header).frameBytes;
    expect(await refused(shard, shard.file.subarray(0, length - 5), length)).toBe("ERR_SHARD_TRUNCATED");
    expect(await refused(shard, shard.file.subarray(0, 40), length)).toBe("ERR_SHARD_TRUNCATED");
    expect(await refused(shard, Buffer.concat([shard.file, Buffer.alloc(10)]), length)).toBe("ERR_SHARD_TOO_LONG");
    expect(await refused(shard, shard.file.subarray(0, length - frameBytes), length - frameBytes)).toBe("ERR_SHARD_TRUNCATED");
    expect(await refused(shard, Buffer.concat([shard.file, Buffer.alloc(frameBytes)]), length + frameBytes)).toBe("ERR_SHARD_TOO_LONG");
  });

  it("refuses a header of another shard, object, version or part (ERR_SHARD_HEADER)", async () => {
    const shard = await contractShard(prng, { objectLength: 2 * SMALL_BLOCK_BYTES, shardIndex: 2 });
    const others = [
      await contractShard(prng, { objectLength: 2 * SMALL_BLOCK_BYTES, shardIndex: 3, like: shard.id }),
      await contractShard(prng, { objectLength: 2 * SMALL_BLOCK_BYTES, shardIndex: 2, partNumber: 1, like: shard.id }),
      await contractShard(prng, { objectLength: 2 * SMALL_BLOCK_BYTES, shardIndex: 2, like: { ...shard.id, versionId: hexId(prng) } }),
      await contractShard(prng, { objectLength: 2 * SMALL_BLOCK_BYTES, shardIndex: 2 }),
    ];
    for (const other of others) expect(await refused(shard, other.file, other.file.length)).toBe("ERR_SHARD_HEADER");
    expect(await refused(shard, flipByte(shard.file, 20), shard.file.length)).toBe("ERR_SHARD_HEADER");
    expect(await refused(shard, prng.bytes(shard.file.length), shard.file.length)).toBe("ERR_SHARD_HEADER");
  });

  it("keeps the stored shard when a rewrite of it fails", async () => {
    const shard = await contractShard(prng, { objectLength: 3 * SMALL_BLOCK_BYTES });
    await write(shard);
    const corrupt = flipByte(shard.file, frameOffset(shardLayout(shard.header), 1));
    expect(await codeOf(node().writeShard(disk(), shard.id, inPieces(corrupt, 64), corrupt.length))).toBe("ERR_SHARD_CHECKSUM");
    expect(await codeOf(node().writeShard(disk(), shard.id, inPieces(shard.file.subarray(0, 200), 64), shard.file.length))).toBe("ERR_SHARD_TRUNCATED");
    expect(await readAll(node().readShard(disk(), shard.id))).toEqual(shard.file);
  });

  it("refuses bad shard ids, disks and lengths with ERR_INVALID_ARGUMENT (unknown disk: ERR_NOT_FOUND)", async () => {
    const shard = await contractShard(prng, { objectLength: SMALL_BLOCK_BYTES, shardIndex: 0 });
    const badIds: ShardId[] = [
      { ...shard.id, objectId: "../../../../../../../../etc/passwd" },
      { ...shard.id, objectId: shard.id.objectId.toUpperCase() },
      { ...shard.id, objectId: shard.id.objectId.slice(1) },
      { ...shard.id, versionId: `${shard.id.versionId.slice(2)}..` },
      { ...shard.id, partNumber: -1 },
      { ...shard.id, partNumber: 10_001 },
      { ...shard.id, partNumber: 1.5 },
      { ...shard.id, shardIndex: -1 },
      { ...shard.id, shardIndex: 1000 },
    ];
    for (const id of badIds) {
      expect(await codeOf(node().writeShard(disk(), id, inPieces(shard.file), shard.file.length))).toBe("ERR_INVALID_ARGUMENT");
      expect((await readOutcome(node().readShard(disk(), id))).code).toBe("ERR_INVALID_ARGUMENT");
      expect(await codeOf(node().deleteShard(disk(), id))).toBe("ERR_INVALID_ARGUMENT");
    }
    for (const declared of [-1, 0, SHARD_HEADER_BYTES - 1, 1.5]) {
      expect(await codeOf(node().writeShard(disk(), shard.id, inPieces(shard.file), declared))).toBe("ERR_INVALID_ARGUMENT");
    }
    expect(await codeOf(node().writeShard("no-such-disk", shard.id, inPieces(shard.file), shard.file.length))).toBe("ERR_NOT_FOUND");
    expect((await readOutcome(node().readShard("no-such-disk", shard.id))).code).toBe("ERR_NOT_FOUND");
    expect(await codeOf(node().putRecord("no-such-disk", contractRecord(prng, { bucket: "ct-nodisk", key: "k" })))).toBe("ERR_NOT_FOUND");
    expect(await codeOf(node().writeShard("..", shard.id, inPieces(shard.file), shard.file.length))).toBe("ERR_INVALID_ARGUMENT");
    expect(await codeOf(node().getRecords("a/b", "ct-bucket", "k"))).toBe("ERR_INVALID_ARGUMENT");
  });
}

function recordTests(prng: Prng, node: NodeRef, disk: DiskRef): void {
  it("stores and returns a record with every field (inline data, metadata, parts)", async () => {
    const bucket = bucketName(prng, "rec");
    const record = contractRecord(prng, {
      bucket,
      key: "photos/2024/cat 😺.jpg",
      inline: prng.bytes(333),
      parts: [
        { partNumber: 1, partVersionId: hexId(prng), size: 5 * 1024 * 1024, etag: "aa", blockBytes: SMALL_BLOCK_BYTES },
        { partNumber: 2, partVersionId: hexId(prng), size: 17, etag: "bb", blockBytes: SMALL_BLOCK_BYTES },
      ],
    });
    expect((await node().putRecord(disk(), record)).result).toBe("stored");
    const stored = await node().getRecords(disk(), bucket, record.key);
    expect(stored).toEqual([record]);
    expect(Buffer.isBuffer(stored[0]?.inline)).toBe(true);
    expect(await node().getRecords(disk(), bucket, "absent")).toEqual([]);
    const marker = contractRecord(prng, { bucket, key: "gone", deleteMarker: true, size: 0, placement: [], contentType: undefined });
    expect((await node().putRecord(disk(), marker)).result).toBe("stored");
    expect(await node().getRecords(disk(), bucket, "gone")).toEqual([marker]);
    // A small object's copies: k = 1 and the write quorum it was acknowledged under.
    const copies = contractRecord(prng, { bucket, key: "copies", ec: { ...record.ec, k: 1, writeQuorum: 1 + record.ec.m }, placement: record.placement.slice(0, 1 + record.ec.m), inline: prng.bytes(100) });
    expect((await node().putRecord(disk(), copies)).result).toBe("stored");
    expect(await node().getRecords(disk(), bucket, "copies")).toEqual([copies]);
  });

  it("returns every version of a key, newest first", async () => {
    const bucket = bucketName(prng, "ver");
    const versions = [3, 1, 4, 2].map((at) => contractRecord(prng, { bucket, key: "k", versionId: versionIdAt(prng, 1_700_000_000_000 + at) }));
    for (const record of versions) expect((await node().putRecord(disk(), record)).result).toBe("stored");
    const newestFirst = [...versions].sort((a, b) => (a.versionId < b.versionId ? 1 : -1));
    expect(await node().getRecords(disk(), bucket, "k")).toEqual(newestFirst);
  });

  it("says how many older versions of the key the disk holds besides the one written", async () => {
    const bucket = bucketName(prng, "older");
    const at = (ms: number) => contractRecord(prng, { bucket, key: "k", versionId: versionIdAt(prng, 1_700_000_000_000 + ms) });
    const [second, first, third] = [at(2), at(1), at(3)];
    expect(await node().putRecord(disk(), second)).toEqual({ result: "stored", olderVersions: 0 });
    expect(await node().putRecord(disk(), first)).toEqual({ result: "stored", olderVersions: 0 });
    expect(await node().putRecord(disk(), third)).toEqual({ result: "stored", olderVersions: 2 });
    expect(await node().putRecord(disk(), second)).toEqual({ result: "unchanged", olderVersions: 1 });
    expect((await node().putRecord(disk(), contractRecord(prng, { bucket, key: "other" }))).olderVersions).toBe(0);
    await node().deleteRecord(disk(), bucket, "k", first.versionId);
    expect((await node().putRecord(disk(), third)).olderVersions).toBe(1);
  });

  it("puts conditionally on the revision: stored, unchanged, superseded", async () => {
    const bucket = bucketName(prng, "cond");
    const first = contractRecord(prng, { bucket, key: "k", revision: 1 });
    expect((await node().putRecord(disk(), first)).result).toBe("stored");
    expect((await node().putRecord(disk(), { ...first, etag: "same-revision" })).result).toBe("unchanged");
    expect((await node().putRecord(disk(), { ...first, revision: 0, etag: "older" })).result).toBe("superseded");
    expect(await node().getRecords(disk(), bucket, "k")).toEqual([first]);
    const repaired = { ...first, revision: 2, placement: placement("n-healed", ["d-z"]) };
    expect((await node().putRecord(disk(), repaired)).result).toBe("stored");
    expect((await node().putRecord(disk(), first)).result).toBe("superseded");
    expect(await node().getRecords(disk(), bucket, "k")).toEqual([repaired]);
  });

  it("deletes one version idempotently", async () => {
    const bucket = bucketName(prng, "del");
    const older = contractRecord(prng, { bucket, key: "k", versionId: versionIdAt(prng, 1_700_000_000_001) });
    const newer = contractRecord(prng, { bucket, key: "k", versionId: versionIdAt(prng, 1_700_000_000_002) });
    await node().putRecord(disk(), older);
    await node().putRecord(disk(), newer);
    expect(await node().deleteRecord(disk(), bucket, "k", newer.versionId)).toBe(true);
    expect(await node().deleteRecord(disk(), bucket, "k", newer.versionId)).toBe(false);
    expect(await node().getRecords(disk(), bucket, "k")).toEqual([older]);
    expect(await node().deleteRecord(disk(), bucket, "k", older.versionId)).toBe(true);
    expect(await node().getRecords(disk(), bucket, "k")).toEqual([]);
  });

  it("keeps each disk's records to itself", async () => {
    if (disk(1) === "missing") return;
    const bucket = bucketName(prng, "disks");
    const record = contractRecord(prng, { bucket, key: "only-on-first" });
    await node().putRecord(disk(0), record);
    expect(await node().getRecords(disk(1), bucket, record.key)).toEqual([]);
    expect((await node().listRecords(disk(1), { bucket, limit: 10 })).records).toEqual([]);
  });

  it("refuses malformed records with ERR_INVALID_ARGUMENT", async () => {
    const bucket = bucketName(prng, "bad");
    const good = contractRecord(prng, { bucket, key: "k" });
    const bad: ObjectRecord[] = [
      { ...good, versionId: "not-hex" },
      { ...good, objectId: good.objectId.toUpperCase() },
      { ...good, key: "" },
      { ...good, key: "x".repeat(1025) },
      { ...good, revision: -1 },
      { ...good, size: 1.5 },
      { ...good, ec: { ...good.ec, k: 0 } },
      { ...good, ec: { ...good.ec, writeQuorum: good.ec.k + good.ec.m + 1 } },
      { ...good, ec: { ...good.ec, writeQuorum: good.ec.k - 1 } },
      { ...good, placement: [{ shardIndex: 99, nodeId: "n1", diskId: "d1" }] },
      { ...good, placement: [{ shardIndex: 0, nodeId: "../n1", diskId: "d1" }] },
    ];
    for (const record of bad) expect(await codeOf(node().putRecord(disk(), record))).toBe("ERR_INVALID_ARGUMENT");
    expect(await codeOf(node().getRecords(disk(), bucket, ""))).toBe("ERR_INVALID_ARGUMENT");
    expect(await codeOf(node().deleteRecord(disk(), bucket, "k", "zz"))).toBe("ERR_INVALID_ARGUMENT");
    expect(await node().getRecords(disk(), bucket, "k")).toEqual([]);
  });
}

function listingTests(prng: Prng, node: NodeRef, disk: DiskRef): void {
  // UTF-8 byte order: "\uffff" (EF BF BF) sorts before "😀" (F0 ...), unlike JavaScript's UTF-16 `<`.
  const keys = ["a", "a/b", "a/c", "a\u0001", "ab", "abc/d", "b", "é", "\uffff", "😀", "z", "zz/top"];

  const fill = async (bucket: string): Promise<Map<string, ObjectRecord>> => {
    const newest = new Map<string, ObjectRecord>();
    for (const key of [...keys].sort(() => prng.next() - 0.5)) {
      const versions = prng.int(1, 3);
      for (let at = 0; at < versions; at++) {
        const record = contractRecord(prng, { bucket, key, versionId: versionIdAt(prng, 1_700_000_000_000 + at * 1000 + prng.int(0, 999)), deleteMarker: at === 2 });
        await node().putRecord(disk(), record);
        const previous = newest.get(key);
        if (previous === undefined || record.versionId > previous.versionId) newest.set(key, record);
      }
    }
    return newest;
  };

  it("lists the newest version of each key in UTF-8 key order, a page at a time", async () => {
    const bucket = bucketName(prng, "list");
    const neighbour = `${bucket}x`;
    await node().putRecord(disk(), contractRecord(prng, { bucket: neighbour, key: "a" }));
    const newest = await fill(bucket);
    const sorted = [...keys].sort(utf8Order);
    const all = await node().listRecords(disk(), { bucket, limit: 1000 });
    expect(all.records.map((record) => record.key)).toEqual(sorted);
    expect(all.records).toEqual(sorted.map((key) => newest.get(key)));
    expect(all.nextStartAfter).toBeUndefined();
    for (const limit of [1, 3, keys.length - 1, keys.length]) {
      const seen: string[] = [];
      let startAfter: string | undefined;
      for (let page = 0; page < keys.length + 1; page++) {
        const result = await node().listRecords(disk(), { bucket, limit, ...(startAfter === undefined ? {} : { startAfter }) });
        expect(result.records.length).toBeLessThanOrEqual(limit);
        seen.push(...result.records.map((record) => record.key));
        startAfter = result.nextStartAfter;
        if (startAfter === undefined) break;
        expect(startAfter).toBe(seen[seen.length - 1]);
      }
      expect(seen).toEqual(sorted);
    }
  });

  it("lists by prefix and start key", async () => {
    const bucket = bucketName(prng, "prefix");
    await fill(bucket);
    const list = async (options: { prefix?: string; startAfter?: string; limit?: number }): Promise<string[]> =>
      (await node().listRecords(disk(), { bucket, limit: 1000, ...options })).records.map((record) => record.key);
    expect(await list({ prefix: "a/" })).toEqual(["a/b", "a/c"]);
    expect(await list({ prefix: "a" })).toEqual(["a", "a/b", "a/c", "a\u0001", "ab", "abc/d"].sort(utf8Order));
    expect(await list({ prefix: "ab" })).toEqual(["ab", "abc/d"]);
    expect(await list({ prefix: "q" })).toEqual([]);
    expect(await list({ prefix: "😀" })).toEqual(["😀"]);
    const sorted = [...keys].sort(utf8Order);
    const after = (key: string): string[] => sorted.filter((candidate) => utf8Order(candidate, key) > 0);
    expect(await list({ startAfter: "ab" })).toEqual(after("ab"));
    expect(await list({ startAfter: "aa" })).toEqual(after("aa"));
    expect(await list({ startAfter: "b" })).toEqual(["z", "zz/top", "é", "\uffff", "😀"]);
    expect(await list({ startAfter: "😀" })).toEqual([]);
    expect(await list({ prefix: "a", startAfter: "a/b" })).toEqual(["a/c", "ab", "abc/d"]);
    expect(await list({ prefix: "a", startAfter: "a" })).toEqual(["a\u0001", "a/b", "a/c", "ab", "abc/d"]);
    expect(await list({ prefix: "b", startAfter: "a" })).toEqual(["b"]);
    expect(await list({ prefix: "a", startAfter: "b" })).toEqual([]);
    const page = await node().listRecords(disk(), { bucket, prefix: "a", limit: 2 });
    expect(page.records.map((record) => record.key)).toEqual(["a", "a\u0001"]);
    expect(page.nextStartAfter).toBe("a\u0001");
    expect((await node().listRecords(disk(), { bucket: bucketName(prng, "empty"), limit: 5 })).records).toEqual([]);
  });

  it("clamps large page sizes and refuses limits below 1", async () => {
    const bucket = bucketName(prng, "limit");
    await node().putRecord(disk(), contractRecord(prng, { bucket, key: "only" }));
    expect((await node().listRecords(disk(), { bucket, limit: 1_000_000 })).records.map((record) => record.key)).toEqual(["only"]);
    expect(await codeOf(node().listRecords(disk(), { bucket, limit: 0 }))).toBe("ERR_INVALID_ARGUMENT");
    expect(await codeOf(node().listRecordsByPlacement(disk(), { nodeId: "n1", diskId: "d1", limit: 0 }))).toBe("ERR_INVALID_ARGUMENT");
  });
}

function placementAndBucketTests(prng: Prng, node: NodeRef, disk: DiskRef, diskIds: () => readonly string[]): void {
  it("lists every record placing a shard on a given node and disk, a page at a time", async () => {
    const bucket = bucketName(prng, "place");
    const target = { nodeId: `n-${prng.bytes(3).toString("hex")}`, diskId: "d-target" };
    const onTarget: ObjectRecord[] = [];
    for (let at = 0; at < 7; at++) {
      const record = contractRecord(prng, { bucket, key: `on/${at}`, placement: placement(target.nodeId, [target.diskId, "d-other"]) });
      onTarget.push(record);
      await node().putRecord(disk(), record);
    }
    for (let at = 0; at < 3; at++) await node().putRecord(disk(), contractRecord(prng, { bucket, key: `off/${at}`, placement: placement(target.nodeId, ["d-other"]) }));
    const collect = async (limit: number): Promise<ObjectRecord[]> => {
      const found: ObjectRecord[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 20; page++) {
        const result = await node().listRecordsByPlacement(disk(), { ...target, limit, ...(cursor === undefined ? {} : { cursor }) });
        expect(result.records.length).toBeLessThanOrEqual(limit);
        found.push(...result.records);
        cursor = result.nextCursor;
        if (cursor === undefined) return found;
      }
      throw new Error("placement pages never ended");
    };
    const byKey = (records: ObjectRecord[]): ObjectRecord[] => [...records].sort((a, b) => utf8Order(a.key, b.key));
    expect(byKey(await collect(3))).toEqual(byKey(onTarget));
    expect(byKey(await collect(1000))).toEqual(byKey(onTarget));
    // A repair that moves the shards away takes the record off the disk's list; so does a delete.
    const moved = onTarget[0] as ObjectRecord;
    await node().putRecord(disk(), { ...moved, revision: moved.revision + 1, placement: placement(target.nodeId, ["d-other"]) });
    const removed = onTarget[1] as ObjectRecord;
    await node().deleteRecord(disk(), bucket, removed.key, removed.versionId);
    expect(byKey(await collect(2))).toEqual(byKey(onTarget.slice(2)));
    expect((await node().listRecordsByPlacement(disk(), { nodeId: target.nodeId, diskId: "d-nothing", limit: 10 })).records).toEqual([]);
  });

  it("stores, lists and deletes buckets", async () => {
    const names = [bucketName(prng, "bkt"), bucketName(prng, "bkt"), bucketName(prng, "bkt")];
    for (const [at, name] of names.entries()) await node().putBucket({ name, created: 1_700_000_000_000 + at });
    expect(await node().getBucket(names[0] as string)).toEqual({ name: names[0], created: 1_700_000_000_000 });
    expect(await node().getBucket(bucketName(prng, "none"))).toBeUndefined();
    const listed = (await node().listBuckets()).filter((bucket) => names.includes(bucket.name));
    expect(listed.map((bucket) => bucket.name)).toEqual([...names].sort());
    const all = (await node().listBuckets()).map((bucket) => bucket.name);
    expect(all).toEqual([...all].sort());
    expect(await node().deleteBucket(names[1] as string)).toBe(true);
    expect(await node().deleteBucket(names[1] as string)).toBe(false);
    expect(await node().getBucket(names[1] as string)).toBeUndefined();
    expect((await node().listBuckets()).some((bucket) => bucket.name === names[1])).toBe(false);
    expect(await codeOf(node().putBucket({ name: "bad/name", created: 1 }))).toBe("ERR_INVALID_ARGUMENT");
  });

  it("reports health of every disk", async () => {
    const health = await node().health();
    expect(health.nodeId).toBe(node().nodeId);
    for (const diskId of diskIds()) {
      const entry = health.disks.find((candidate) => candidate.diskId === diskId);
      expect(entry?.state).toBe("ok");
      expect(entry?.freeBytes).toBeGreaterThan(0);
      expect(entry?.usedBytes).toBeGreaterThanOrEqual(0);
      expect(Number.isInteger(entry?.shardCount)).toBe(true);
      expect(Number.isInteger(entry?.recordCount)).toBe(true);
    }
  });
}
