/**
 * Small objects as 1 + m copies (gateway/objects/put-object.ts, SMALL_COPIES_BYTES_DEFAULT): what
 * is stored where, the fall back to erasure coding when a copy cannot be written, and that no
 * read serves an older version than the newest acknowledged one whichever m nodes are down,
 * whatever mix of copies and erasure-coded versions the key went through. Memory nodes in
 * process (test/gateway/memory-store.ts); seeded.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { TesseraError, isTesseraError } from "../../core/errors.js";
import { SHARD_HEADER_BYTES } from "../../core/limits.js";
import { INLINE_OBJECT_BYTES_MAX, SMALL_COPIES_BYTES_DEFAULT } from "../../gateway/objects/small-objects.js";
import { Prng, seedFromEnv } from "../prng.js";
import { bodyOf, byShard, memoryStore, type MemoryStore } from "./memory-store.js";

const SEED = seedFromEnv(0xc0_9135);
const BUCKET = "b";
const down = (): TesseraError => new TesseraError("ERR_NODE_UNAVAILABLE", "down (test)");

/** Every pair of the six nodes' indexes: the m = 2 failures a 4+2 cluster must survive. */
const PAIRS = Array.from({ length: 6 }, (_, a) => Array.from({ length: 6 - a - 1 }, (_, offset) => [a, a + 1 + offset] as const)).flat();

describe(`small objects stored as copies (seed ${SEED})`, () => {
  let f: MemoryStore;
  let prng: Prng;
  beforeEach(async () => {
    f = memoryStore({ name: "small-copies" });
    prng = new Prng(SEED);
    await f.store.createBucket(BUCKET);
  });

  async function put(key: string, bytes: Buffer, store = f.store): Promise<string> {
    const result = await store.put({ bucket: BUCKET, key, body: bodyOf(bytes), length: bytes.length, userMetadata: {}, systemMetadata: {} });
    await store.settle();
    return result.record.versionId;
  }

  async function get(key: string): Promise<Buffer> {
    const resolved = await f.store.resolve(BUCKET, key);
    const pieces: Buffer[] = [];
    for await (const piece of f.store.read(resolved, 0, resolved.record.size)) pieces.push(piece);
    return Buffer.concat(pieces);
  }

  /** Runs `check` with each pair of nodes failing every call, then brings them back. */
  async function withEachPairDown(check: (pair: readonly [number, number]) => Promise<void>): Promise<void> {
    const shards = byShard(f, BUCKET, "k");
    for (const pair of PAIRS) {
      for (const index of pair) shards[index]?.fail({ error: down });
      try {
        await check(pair);
      } finally {
        for (const index of pair) shards[index]?.heal();
      }
    }
  }

  it("stores up to SMALL_COPIES_BYTES_DEFAULT bytes as three whole copies on the placement's first three disks; one byte more erasure-coded on six", async () => {
    const small = Buffer.from(prng.bytes(SMALL_COPIES_BYTES_DEFAULT));
    await put("k", small);
    const shards = byShard(f, BUCKET, "k");
    for (const [index, node] of shards.entries()) {
      const records = await node.inner.getRecords("d0", BUCKET, "k");
      if (index >= 3) {
        expect(records).toEqual([]);
        continue;
      }
      const [record] = records;
      expect(record?.ec).toMatchObject({ k: 1, m: 2, writeQuorum: 3 });
      expect(record?.placement.map((location) => location.nodeId)).toEqual(shards.slice(0, 3).map((node) => node.nodeId));
      // The copy itself: the shard's one frame is the object's bytes, then its checksum.
      expect(record?.inline?.subarray(SHARD_HEADER_BYTES, SHARD_HEADER_BYTES + small.length).equals(small)).toBe(true);
    }
    expect((await get("k")).equals(small)).toBe(true);

    const larger = Buffer.from(prng.bytes(SMALL_COPIES_BYTES_DEFAULT + 1));
    await put("k2", larger);
    for (const node of byShard(f, BUCKET, "k2")) {
      const [record] = await node.inner.getRecords("d0", BUCKET, "k2");
      expect(record?.ec).toEqual({ k: 4, m: 2, blockBytes: record?.ec.blockBytes, checksumAlgorithm: record?.ec.checksumAlgorithm });
    }
    expect((await get("k2")).equals(larger)).toBe(true);
  });

  it("with smallCopiesBytes 0 every object is erasure-coded, the empty one too", async () => {
    const coded = memoryStore({ name: "small-copies off", smallCopiesBytes: 0 });
    await coded.store.createBucket(BUCKET);
    for (const [key, body] of [["k", Buffer.from("tiny")], ["empty", Buffer.alloc(0)]] as const) {
      await coded.store.put({ bucket: BUCKET, key, body: bodyOf(body), length: body.length, userMetadata: {}, systemMetadata: {} });
      const holders = (await Promise.all(coded.nodes.map((node) => node.inner.getRecords("d0", BUCKET, key)))).filter((records) => records.length === 1);
      expect(holders).toHaveLength(6);
    }
    expect(() => memoryStore({ name: "bad", smallCopiesBytes: INLINE_OBJECT_BYTES_MAX + 1 })).toThrow(/smallCopiesBytes/);
  });

  it("a copy that cannot be written turns the PUT into an erasure-coded one under a newer version id, and its missing record is queued for repair", async () => {
    const bytes = Buffer.from(prng.bytes(1000));
    const shards = byShard(f, BUCKET, "k");
    shards[1]?.fail({ method: "putRecord", error: down });
    const versionId = await put("k", bytes);
    shards[1]?.heal();
    const attempted = f.nodes.flatMap((node) => node.calls.filter((call) => call.method === "putRecord").map((call) => (call.args[1] as { versionId: string; ec: { k: number } })));
    // Three copies attempted under one version id, then six erasure-coded records under a newer one.
    expect(attempted.filter((record) => record.ec.k === 1)).toHaveLength(3);
    expect(attempted.filter((record) => record.ec.k === 4).every((record) => record.versionId === versionId)).toBe(true);
    expect(attempted.filter((record) => record.ec.k === 1).every((record) => record.versionId < versionId)).toBe(true);
    for (const [index, node] of shards.entries()) {
      const records = await node.inner.getRecords("d0", BUCKET, "k");
      // The copies written were removed; the failing disk holds nothing.
      expect(records.map((record) => record.ec.k)).toEqual(index === 1 ? [] : [4]);
    }
    expect(f.repairs).toEqual([`${BUCKET}/k: write missed shards 1`]);
    expect((await get("k")).equals(bytes)).toBe(true);
  });

  it("a conditional PUT of a small object is erasure-coded: its lock need not hold a lease on every copy's disk", async () => {
    await f.store.put({ bucket: BUCKET, key: "k", body: bodyOf(Buffer.from("if absent")), length: 9, userMetadata: {}, systemMetadata: {} }, { ifNoneMatch: true });
    const holders = (await Promise.all(f.nodes.map((node) => node.inner.getRecords("d0", BUCKET, "k")))).filter((records) => records.length === 1);
    expect(holders.map(([record]) => record?.ec.k)).toEqual([4, 4, 4, 4, 4, 4]);
    expect((await get("k")).toString()).toBe("if absent");
  });

  it("a copies disk the failure detector holds unusable sends a small PUT straight to erasure coding", async () => {
    const shards = byShard(f, BUCKET, "k");
    f.suspects.nodes.add((shards[2] as (typeof shards)[number]).nodeId);
    await put("k", Buffer.from("small"));
    const puts = f.nodes.reduce((sum, node) => sum + node.calls.filter((call) => call.method === "putRecord").length, 0);
    expect(puts).toBe(6);
    const [record] = await (shards[0] as (typeof shards)[number]).inner.getRecords("d0", BUCKET, "k");
    expect(record?.ec.k).toBe(4);
  });

  it("whichever two nodes are down, a GET serves the newest version through copies and erasure-coded overwrites and a delete", async () => {
    const coded = Buffer.from(prng.bytes(SMALL_COPIES_BYTES_DEFAULT + 100));
    const small = Buffer.from(prng.bytes(100));
    const codedAgain = Buffer.from(prng.bytes(20_000));
    const steps: { readonly write: () => Promise<unknown>; readonly expect: Buffer | "absent" }[] = [
      { write: () => put("k", coded), expect: coded },
      { write: () => put("k", small), expect: small },
      { write: () => put("k", codedAgain), expect: codedAgain },
      { write: () => put("k", small), expect: small },
      { write: () => f.store.delete(BUCKET, "k"), expect: "absent" },
      { write: () => put("k", Buffer.from("back")), expect: Buffer.from("back") },
    ];
    for (const step of steps) {
      await step.write();
      await f.store.settle();
      await withEachPairDown(async (pair) => {
        const got = await get("k").catch((error: unknown) => error);
        if (step.expect === "absent") expect(isTesseraError(got, "ERR_NOT_FOUND"), `pair ${pair.join(",")}`).toBe(true);
        else expect(Buffer.isBuffer(got) && got.equals(step.expect), `pair ${pair.join(",")}: ${String(got)}`).toBe(true);
      });
    }
  });

  it("a newer copies version whose three disks are all down is not hidden behind an older delete marker: the GET fails instead of answering NoSuchKey", async () => {
    await put("k", Buffer.from("first"));
    await f.store.delete(BUCKET, "k");
    await f.store.settle();
    const shards = byShard(f, BUCKET, "k");
    // The marker's garbage collection fails on the three disks without copies: it stays there.
    for (const node of shards.slice(3)) node.fail({ method: "deleteRecord", error: down });
    await put("k", Buffer.from("newer and small")).catch(() => undefined);
    await f.store.settle();
    for (const node of shards.slice(3)) {
      node.heal();
      expect((await node.inner.getRecords("d0", BUCKET, "k")).map((record) => record.deleteMarker)).toEqual([true]);
    }
    for (const node of shards.slice(0, 3)) node.fail({ error: down });
    const error = await get("k").catch((caught: unknown) => caught);
    expect(isTesseraError(error, "ERR_READ_QUORUM"), String(error)).toBe(true);
    for (const node of shards.slice(0, 3)) node.heal();
    expect((await get("k")).toString()).toBe("newer and small");
  });

  it("copies the healer moved off their disks are read from where their records say, with those disks down", async () => {
    const bytes = Buffer.from(prng.bytes(3000));
    await put("k", bytes);
    const shards = byShard(f, BUCKET, "k");
    const [record] = await (shards[0] as (typeof shards)[number]).inner.getRecords("d0", BUCKET, "k");
    if (record === undefined) throw new Error("no copies record");
    // What a repair does: each copy rewritten on another disk, under a higher revision naming it.
    const moved = { ...record, revision: record.revision + 1, placement: shards.slice(3).map((node, shardIndex) => ({ shardIndex, nodeId: node.nodeId, diskId: "d0" })) };
    for (const node of shards.slice(3)) await node.inner.putRecord("d0", moved);
    for (const node of shards.slice(0, 3)) {
      await node.inner.deleteRecord("d0", BUCKET, "k", record.versionId);
      node.fail({ error: down });
    }
    expect((await get("k")).equals(bytes)).toBe(true);
  });
});
