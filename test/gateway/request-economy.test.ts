/**
 * How many internal requests the object layer makes for small objects (issue 7: each one is
 * an HTTP round trip to a node, the dominant cost of a 4 KiB PUT or GET). Counted with
 * FaultyNode's call log over memory nodes; the behaviour checked alongside each saving is
 * what makes it safe: a deleted bucket is refused at once, superseded versions are still
 * collected, a GET still finds the newest version when the first disks asked lack it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BUCKET_SEEN_TTL_MS, type ObjectStore } from "../../gateway/objects/object-store.js";
import { SMALL_COPIES_BYTES_DEFAULT } from "../../gateway/objects/small-objects.js";
import { FaultyNode } from "../faulty-node.js";
import { TesseraError, isTesseraError } from "../../core/errors.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import { Prng } from "../prng.js";
import { bodyOf, byShard as placedOn, memoryStore, type MemoryStore } from "./memory-store.js";

function count(nodes: readonly FaultyNode[], method: string): number {
  return nodes.reduce((sum, node) => sum + node.calls.filter((call) => call.method === method).length, 0);
}

function clearCalls(nodes: readonly FaultyNode[]): void {
  for (const node of nodes) node.calls.length = 0;
}

async function put(store: ObjectStore, key: string, text: string): Promise<void> {
  const body = Buffer.from(text);
  await store.put({ bucket: "b", key, body: bodyOf(body), length: body.length, userMetadata: {}, systemMetadata: {} });
}

async function get(store: ObjectStore, key: string): Promise<string> {
  const resolved = await store.resolve("b", key);
  const pieces: Buffer[] = [];
  for await (const piece of store.read(resolved, 0, resolved.record.size)) pieces.push(piece);
  return Buffer.concat(pieces).toString();
}

/** A small object above SMALL_COPIES_BYTES_DEFAULT: erasure-coded, its shards inline in six records. */
const CODED = "coded ".repeat(Math.ceil((SMALL_COPIES_BYTES_DEFAULT + 1) / 6));

describe("small-object request economy", () => {
  let f: MemoryStore;
  beforeEach(async () => {
    f = memoryStore({ name: "request-economy" });
    await f.store.createBucket("b");
    clearCalls(f.nodes);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("looks a bucket up once per BUCKET_SEEN_TTL_MS, and a deleted bucket is refused at once", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    for (let index = 0; index < 10; index++) await put(f.store, `k${index}`, "x");
    // createBucket already saw the bucket: no lookups at all within the TTL.
    expect(count(f.nodes, "getBucket")).toBe(0);
    vi.setSystemTime(Date.now() + BUCKET_SEEN_TTL_MS);
    await put(f.store, "later", "x");
    await put(f.store, "later2", "x");
    expect(count(f.nodes, "getBucket")).toBe(6); // one lookup, one request per node
    for (let index = 0; index < 10; index++) await f.store.delete("b", `k${index}`);
    for (const key of ["later", "later2"]) await f.store.delete("b", key);
    await f.store.settle();
    await f.store.deleteBucket("b");
    const error = await put(f.store, "after-delete", "x").catch((caught: unknown) => caught);
    expect(isTesseraError(error, "ERR_NOT_FOUND")).toBe(true);
  });

  it("a PUT of a new key is one record write per disk: no bucket lookup, no garbage-collection reads", async () => {
    await put(f.store, "fresh", "hello");
    await f.store.settle();
    const methods = new Set(f.nodes.flatMap((node) => node.calls.map((call) => call.method)));
    expect([...methods]).toEqual(["putRecord"]);
    // Small: 1 + m = 3 copies, on the first three disks of the placement.
    expect(count(f.nodes, "putRecord")).toBe(3);
    expect(new Set(f.nodes.filter((node) => node.calls.length > 0))).toEqual(new Set(byShard("fresh").slice(0, 3)));
    clearCalls(f.nodes);
    await put(f.store, "fresh-coded", CODED);
    await f.store.settle();
    expect(count(f.nodes, "putRecord")).toBe(6);
    expect(f.nodes.flatMap((node) => node.calls).length).toBe(6);
  });

  it("an overwrite still collects the superseded version from every disk", async () => {
    await put(f.store, "k", "first");
    await put(f.store, "k", "second");
    await f.store.settle();
    // The copies' three disks hold both versions; the other three never had any.
    expect(count(f.nodes, "getRecords")).toBe(3);
    for (const node of f.memory) {
      const versions = await node.getRecords("d0", "b", "k");
      expect(versions.length).toBeLessThanOrEqual(1);
    }
    expect(await get(f.store, "k")).toBe("second");
  });

  it("copies replacing an erasure-coded version: the old records are collected from all six disks, those without the copies too", async () => {
    await put(f.store, "k", CODED);
    await put(f.store, "k", "small now");
    await f.store.settle();
    const shards = byShard("k");
    for (const [index, node] of shards.entries()) {
      const versions = await node.inner.getRecords("d0", "b", "k");
      expect(versions.map((record) => record.size)).toEqual(index < 3 ? ["small now".length] : []);
    }
    expect(await get(f.store, "k")).toBe("small now");
  });

  /** The nodes holding the key's shards, by shard index. */
  function byShard(key: string): FaultyNode[] {
    return placedOn(f, "b", key);
  }

  async function recordOn(node: FaultyNode, key: string): Promise<ObjectRecord> {
    const [record] = await node.inner.getRecords("d0", "b", key);
    if (record === undefined) throw new Error(`no record of ${key} on ${node.nodeId}`);
    return record;
  }

  it("a GET asks the records of k = 4 disks (the data shards'), not all 6, copies or not", async () => {
    for (const [key, text] of [["small", "small object"], ["coded", CODED]] as const) {
      await put(f.store, key, text);
      clearCalls(f.nodes);
      expect(await get(f.store, key)).toBe(text);
      expect(count(f.nodes, "getRecords")).toBe(4);
      const asked = f.nodes.filter((node) => node.calls.some((call) => call.method === "getRecords"));
      expect(new Set(asked)).toEqual(new Set(byShard(key).slice(0, 4)));
    }
  });

  it("a GET asks the other disks when one of the first ones does not answer", async () => {
    for (const [key, text] of [["k", "still here"], ["coded", CODED]] as const) {
      await put(f.store, key, text);
      const [first] = byShard(key);
      first?.fail({ method: "getRecords", error: new TesseraError("ERR_NODE_UNAVAILABLE", "down (test)") });
      clearCalls(f.nodes);
      expect(await get(f.store, key)).toBe(text);
      expect(count(f.nodes, "getRecords")).toBe(6);
    }
  });

  it("a newer version on only some of the first four disks sends the GET to all six, and the acknowledged one is served", async () => {
    await put(f.store, "k", CODED);
    const shards = byShard("k");
    const old = await recordOn(shards[0] as FaultyNode, "k");
    // A failed PUT of a newer version: records on 3 of the first four disks (not readable
    // from them alone, and possibly acknowledged as far as those four can tell).
    const newer: ObjectRecord = { ...old, versionId: (BigInt(`0x${old.versionId}`) + 1n).toString(16).padStart(old.versionId.length, "0"), etag: "f".repeat(32), inline: undefined };
    for (const node of shards.slice(0, 3)) await node.inner.putRecord("d0", newer);
    clearCalls(f.nodes);
    // All six answered: the newer version has 3 records and no disk is silent, so it cannot
    // have been acknowledged (3 < W = 5) and the older one is served.
    expect(await get(f.store, "k")).toBe(CODED);
    expect(count(f.nodes, "getRecords")).toBe(6);
  });

  it("a corrupt inline shard on one of the first four disks is read around", async () => {
    const text = Buffer.from(new Prng(7).bytes(3000)).toString("base64");
    await put(f.store, "rot", text);
    const first = byShard("rot")[0] as FaultyNode;
    const record = await recordOn(first, "rot");
    const inline = Buffer.from(record.inline as Buffer);
    inline[inline.length - 10] = (inline[inline.length - 10] as number) ^ 0xff;
    await first.inner.deleteRecord("d0", "b", "rot", record.versionId);
    await first.inner.putRecord("d0", { ...record, inline });
    expect(await get(f.store, "rot")).toBe(text);
  });

  it("a large object resolved from four disks still reads parity when a data shard fails mid-stream", async () => {
    const bytes = Buffer.from(new Prng(9).bytes(1024 * 1024 + 5));
    await f.store.put({ bucket: "b", key: "big", body: bodyOf(bytes), length: bytes.length, userMetadata: {}, systemMetadata: {} });
    const first = byShard("big")[0] as FaultyNode;
    first.fail({ method: "readShard", afterPieces: 1, error: new TesseraError("ERR_NODE_UNAVAILABLE", "went away (test)") });
    clearCalls(f.nodes);
    const resolved = await f.store.resolve("b", "big");
    expect(resolved.partial).toBe(true);
    const pieces: Buffer[] = [];
    for await (const piece of f.store.read(resolved, 0, bytes.length)) pieces.push(piece);
    expect(Buffer.concat(pieces).equals(bytes)).toBe(true);
    expect(count(f.nodes, "getRecords")).toBe(4);
  });
});
