/**
 * The recycled buffers of shard-files.ts. Reads: a piece handed back with releaseShardPiece
 * serves a later read, and nothing else ever does (a piece kept, a part of a piece, a second
 * release). Writes: uploads copy their pieces into pooled batch buffers. Then reads through
 * the node's GET route, which hands pieces back once the socket took them: concurrent large
 * reads, a corrupt frame mid-stream, a client that leaves.
 * Shards here use the default 1 MiB stripe (256 KiB chunks), so reads are pooled.
 */
import { mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { SHARD_HEADER_BYTES } from "../../core/limits.js";
import { frameOffset, shardLayout } from "../../core/shard-format.js";
import type { ShardId } from "../../core/storage-api.js";
import { LocalNode } from "../../storage-node/local-node.js";
import { SHARD_READ_BYTES, releaseShardPiece } from "../../storage-node/shard-files.js";
import { Prng, seedFromEnv } from "../prng.js";
import { startNode, useNodeHarness } from "./harness.js";
import { inPieces, makeShard, readOutcome, type TestShard } from "./shards.js";

const MiB = 1024 * 1024;
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const BLOCK_BYTES = MiB;
const seed = seedFromEnv(0x5eed_0417);
console.log(`shard-read-pool.test seed ${seed} (replay with TEST_SEED=${seed})`);
const prng = new Prng(seed);
useNodeHarness();

const roots: string[] = [];
const nodes: LocalNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function openNode(): Promise<{ node: LocalNode; root: string }> {
  const root = await mkdtemp(path.join(os.tmpdir(), "tessera-test-readpool-"));
  roots.push(root);
  const node = await LocalNode.open({ nodeId: "n1", disks: [{ id: "d1", path: path.join(root, "d1") }] });
  nodes.push(node);
  return { node, root };
}

function fileOf(root: string, id: ShardId): string {
  return path.join(root, "d1", "shards", id.objectId.slice(0, 2), id.objectId, `${id.versionId}.${id.partNumber}.${id.shardIndex}`);
}

async function stored(node: LocalNode, stripes: number): Promise<TestShard> {
  const shard = await makeShard(prng, { objectLength: stripes * BLOCK_BYTES - 5, blockBytes: BLOCK_BYTES });
  await node.writeShard("d1", shard.id, inPieces(shard.file, 64 * 1024), shard.file.length);
  return shard;
}

/** Reads a shard as the GET route does: copy each piece out, then hand it back. */
async function readReleasing(node: LocalNode, id: ShardId): Promise<Buffer> {
  const copies: Buffer[] = [];
  for await (const piece of node.readShard("d1", id)) {
    copies.push(Buffer.from(piece));
    releaseShardPiece(piece);
  }
  return Buffer.concat(copies);
}

describe("recycled read buffers", () => {
  it("reads large shards in few pieces, and concurrent readers that hand pieces back get their own bytes", async () => {
    const { node } = await openNode();
    const shards = [await stored(node, 12), await stored(node, 9), await stored(node, 16)];
    const pieces: number[] = [];
    for await (const piece of node.readShard("d1", shards[0]!.id)) {
      pieces.push(piece.length);
      releaseShardPiece(piece);
    }
    // The header, then whole frames of about SHARD_READ_BYTES per piece.
    expect(pieces[0]).toBe(SHARD_HEADER_BYTES);
    expect(Math.max(...pieces)).toBeLessThanOrEqual(SHARD_READ_BYTES);
    expect(pieces.length).toBeLessThanOrEqual(1 + Math.ceil(12 / 4));
    for (let round = 0; round < 3; round++) {
      const read = await Promise.all([...shards, ...shards].map((shard) => readReleasing(node, shard.id)));
      read.forEach((bytes, at) => expect(bytes.equals(shards[at % shards.length]!.file)).toBe(true));
    }
  });

  it("never recycles a piece that was kept, only partly handed back, or handed back twice", async () => {
    const { node } = await openNode();
    const kept = await stored(node, 8);
    const other = await stored(node, 8);
    const keptPieces: Buffer[] = [];
    for await (const piece of node.readShard("d1", kept.id)) {
      keptPieces.push(piece);
      // A part of a piece is not the piece: its buffer stays with the consumer.
      releaseShardPiece(piece.subarray(0, Math.min(16, piece.length)));
    }
    // A piece handed back twice must not enter the pool twice (two reads would share it).
    const twice: Buffer[] = [];
    for await (const piece of node.readShard("d1", other.id)) twice.push(piece);
    for (const piece of twice) releaseShardPiece(piece);
    for (const piece of twice) releaseShardPiece(piece);
    // Many readers at once, each holding its pieces until the end: they need distinct buffers.
    const held = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const pieces: Buffer[] = [];
        for await (const piece of node.readShard("d1", other.id)) pieces.push(piece);
        return pieces;
      }),
    );
    for (const pieces of held) expect(Buffer.concat(pieces).equals(other.file)).toBe(true);
    expect(Buffer.concat(keptPieces).equals(kept.file)).toBe(true);
    for (const pieces of held) for (const piece of pieces) releaseShardPiece(piece);
    expect((await readReleasing(node, other.id)).equals(other.file)).toBe(true);
    expect(Buffer.concat(keptPieces).equals(kept.file)).toBe(true);
  });

  it("a corrupt frame in a pooled read still ends the read at that frame, after the good frames before it", async () => {
    const { node, root } = await openNode();
    const shard = await stored(node, 12);
    const layout = shardLayout(shard.header);
    const file = fileOf(root, shard.id);
    const bytes = await readFile(file);
    // Frame 6: the third frame of the second read.
    bytes[frameOffset(layout, 6) + 1000] = (bytes[frameOffset(layout, 6) + 1000] ?? 0) ^ 0x10;
    await writeFile(file, bytes);
    for (let round = 0; round < 2; round++) {
      const pieces: Buffer[] = [];
      let code: unknown;
      try {
        for await (const piece of node.readShard("d1", shard.id)) {
          pieces.push(Buffer.from(piece));
          releaseShardPiece(piece);
        }
      } catch (error) {
        code = (error as { code?: unknown }).code;
      }
      expect(code).toBe("ERR_SHARD_CHECKSUM");
      expect(Buffer.concat(pieces).equals(shard.file.subarray(0, frameOffset(layout, 6)))).toBe(true);
    }
    const range = await readOutcome(node.readShard("d1", shard.id, { firstStripe: 7, stripeCount: 5 }));
    expect(range.error).toBeUndefined();
    expect(range.bytes.equals(shard.file.subarray(frameOffset(layout, 7), frameOffset(layout, 12)))).toBe(true);
  });
});

describe("recycled write buffers", () => {
  it("concurrent large uploads land byte for byte; a corrupt frame mid-upload commits nothing, and the next upload is whole", async () => {
    const { node, root } = await openNode();
    const shards = await Promise.all([9, 5, 12, 7].map((stripes) => makeShard(prng, { objectLength: stripes * BLOCK_BYTES - 3, blockBytes: BLOCK_BYTES })));
    // Odd piece sizes, so pieces straddle the 1 MiB batches.
    await Promise.all(shards.map((shard, at) => node.writeShard("d1", shard.id, inPieces(shard.file, 40_000 + at * 7_777), shard.file.length)));
    for (const shard of shards) expect((await readFile(fileOf(root, shard.id))).equals(shard.file)).toBe(true);

    const bad = await makeShard(prng, { objectLength: 10 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const corrupt = Buffer.from(bad.file);
    const layout = shardLayout(bad.header);
    corrupt[frameOffset(layout, 7) + 12] = (corrupt[frameOffset(layout, 7) + 12] ?? 0) ^ 1;
    const failed = await node.writeShard("d1", bad.id, inPieces(corrupt, 65_536), corrupt.length).then(
      () => "resolved",
      (error: unknown) => (error as { code?: unknown }).code,
    );
    expect(failed).toBe("ERR_SHARD_CHECKSUM");
    expect((await readOutcome(node.readShard("d1", bad.id))).error).toMatchObject({ code: "ERR_NOT_FOUND" });
    expect(await readdir(path.join(root, "d1", "tmp"))).toEqual([]);
    // The pieces of an upload in flight are copied, not held until their batch is written.
    const slow = await makeShard(prng, { objectLength: 4 * BLOCK_BYTES, blockBytes: BLOCK_BYTES });
    const sent: WeakRef<Buffer>[] = [];
    let resume: () => void = () => undefined;
    let paused: () => void = () => undefined;
    const atPause = new Promise<void>((resolve) => (paused = resolve));
    async function* body(): AsyncGenerator<Buffer> {
      for (let at = 0; at < slow.file.length; at += 32_768) {
        if (sent.length === 20) {
          paused();
          await new Promise<void>((resolve) => (resume = resolve));
        }
        const piece = Buffer.from(slow.file.subarray(at, at + 32_768));
        sent.push(new WeakRef(piece));
        yield piece;
      }
    }
    const writing = node.writeShard("d1", slow.id, body(), slow.file.length);
    await atPause;
    for (let round = 0; round < 3; round++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(sent.slice(0, -2).filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
    resume();
    await writing;
    expect((await readFile(fileOf(root, slow.id))).equals(slow.file)).toBe(true);
    // The buffer that held the failed upload's bytes serves the next one cleanly.
    await node.writeShard("d1", bad.id, inPieces(bad.file, 65_536), bad.file.length);
    expect((await readFile(fileOf(root, bad.id))).equals(bad.file)).toBe(true);
  });
});

describe("recycled read buffers through the GET route", () => {
  it("serves concurrent large reads byte for byte, a corrupt frame cuts the stream, and a client that leaves frees the read", async () => {
    const node = await startNode(prng);
    const client = node.client();
    const shards = await Promise.all([10, 7, 16].map((stripes) => makeShard(prng, { objectLength: stripes * BLOCK_BYTES, blockBytes: BLOCK_BYTES })));
    for (const shard of shards) await client.writeShard("a", shard.id, inPieces(shard.file, 64 * 1024), shard.file.length);
    for (let round = 0; round < 2; round++) {
      const reads = await Promise.all([...shards, ...shards, ...shards].map((shard) => readOutcome(client.readShard("a", shard.id))));
      reads.forEach((read, at) => {
        expect(read.error).toBeUndefined();
        expect(read.bytes.equals(shards[at % shards.length]!.file)).toBe(true);
      });
    }
    // A reader that stops early (the connection goes away mid-stream) leaves the node serving.
    const abandoned = new AbortController();
    let taken = 0;
    try {
      for await (const piece of client.readShard("a", shards[2]!.id, undefined, { signal: abandoned.signal })) {
        taken += piece.length;
        if (taken > 2 * MiB) abandoned.abort();
      }
    } catch {
      // The abort ends the read, as the caller asked.
    }
    const corrupt = shards[0]!;
    const layout = shardLayout(corrupt.header);
    const file = path.join(node.dirs.root, "a", "shards", corrupt.id.objectId.slice(0, 2), corrupt.id.objectId, `${corrupt.id.versionId}.0.${corrupt.id.shardIndex}`);
    const handle = await open(file, "r+");
    await handle.write(Buffer.from([0xff, 0x00, 0xff]), 0, 3, frameOffset(layout, 5) + 9);
    await handle.close();
    const broken = await readOutcome(client.readShard("a", corrupt.id));
    expect(broken.error).toMatchObject({ code: expect.stringMatching(/^ERR_SHARD_(TRUNCATED|CHECKSUM)$/) });
    expect(broken.bytes.length).toBeLessThanOrEqual(frameOffset(layout, 5));
    expect(broken.bytes.equals(corrupt.file.subarray(0, broken.bytes.length))).toBe(true);
    const after = await Promise.all(shards.slice(1).map((shard) => readOutcome(client.readShard("a", shard.id))));
    after.forEach((read, at) => expect(read.bytes.equals(shards[at + 1]!.file)).toBe(true));
  });
});
