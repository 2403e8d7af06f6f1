/**
 * Degraded GETs (issue 7: within 15% of healthy): a node the failure detector holds suspect
 * or down, or whose client just saw it refuse a connection, is not asked for records or
 * shards while the others suffice, is still asked when
 * they do not (a wrong suspicion never fails a GET or serves stale data), and a dead shard
 * is tried once per GET, not once per stripe. Counted with FaultyNode's call log over memory
 * nodes, every GET checked byte for byte.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { RECORD_HEDGE_MS, RECORD_READ_TIMEOUT_MS } from "../../gateway/objects/versions.js";
import { SMALL_COPIES_BYTES_DEFAULT } from "../../gateway/objects/small-objects.js";
import { FaultyNode } from "../faulty-node.js";
import { TesseraError } from "../../core/errors.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import { Prng } from "../prng.js";
import { bodyOf, byShard as placedOn, memoryStore, type MemoryStore } from "./memory-store.js";

const BLOCK_BYTES = 64 * 1024;
/** Six stripes and a bit: several stripes after the first, none of them full-length at the end. */
const OBJECT_BYTES = 6 * BLOCK_BYTES + 4097;

const down = (): TesseraError => new TesseraError("ERR_NODE_UNAVAILABLE", "down (test)");

describe("degraded GETs", () => {
  let f: MemoryStore;
  const bytes = Buffer.from(new Prng(11).bytes(OBJECT_BYTES));

  beforeEach(async () => {
    f = memoryStore({ name: "degraded-read", blockBytes: BLOCK_BYTES });
    await f.store.createBucket("b");
    await f.store.put({ bucket: "b", key: "big", body: bodyOf(bytes), length: bytes.length, userMetadata: {}, systemMetadata: {} });
    await f.store.settle();
    for (const node of f.nodes) node.calls.length = 0;
  });

  /** The nodes holding the key's shards, by shard index. */
  function byShard(key: string): FaultyNode[] {
    return placedOn(f, "b", key);
  }

  async function get(key = "big", start = 0, end?: number): Promise<Buffer> {
    const resolved = await f.store.resolve("b", key);
    const pieces: Buffer[] = [];
    for await (const piece of f.store.read(resolved, start, end ?? resolved.record.size)) pieces.push(piece);
    return Buffer.concat(pieces);
  }

  const calls = (node: FaultyNode, method: string): number => node.calls.filter((call) => call.method === method).length;

  it("never asks a node the detector holds down: records from a quorum of the others, data from the others' shards", async () => {
    const shards = byShard("big");
    const suspect = shards[0] as FaultyNode;
    suspect.fail({ error: down() });
    f.suspects.nodes.add(suspect.nodeId);
    expect((await get()).equals(bytes)).toBe(true);
    expect(suspect.calls).toEqual([]);
    // Four record reads (a read quorum), none repeated; k shard reads, each opened once.
    expect(f.nodes.reduce((sum, node) => sum + calls(node, "getRecords"), 0)).toBe(4);
    expect(f.nodes.reduce((sum, node) => sum + calls(node, "readShard"), 0)).toBe(4);
  });

  it("with two nodes held down, reads the four others and rebuilds from both parity shards", async () => {
    const shards = byShard("big");
    for (const node of shards.slice(1, 3)) {
      node.fail({ error: down() });
      f.suspects.nodes.add(node.nodeId);
    }
    expect((await get(undefined, 1000, OBJECT_BYTES - 3)).equals(bytes.subarray(1000, OBJECT_BYTES - 3))).toBe(true);
    for (const node of shards.slice(1, 3)) expect(node.calls).toEqual([]);
  });

  it("a wrongly suspected node still serves the records and the shard a GET cannot do without", async () => {
    const shards = byShard("big");
    // Two nodes really down (not known), two healthy ones wrongly suspected: only with the
    // suspects are there k shards.
    for (const node of shards.slice(0, 2)) node.fail({ error: down() });
    for (const node of shards.slice(2, 4)) f.suspects.nodes.add(node.nodeId);
    expect((await get()).equals(bytes)).toBe(true);
    for (const node of shards.slice(2, 4)) expect(calls(node, "readShard")).toBe(1);
  });

  it("a newer version on a suspected node's disk is still found: no stale read", async () => {
    const shards = byShard("big");
    // Above SMALL_COPIES_BYTES_DEFAULT: erasure-coded inline shards, a record on each of the six disks.
    const small = Buffer.from("newer, written while one node was unreachable from here. ".repeat(Math.ceil((SMALL_COPIES_BYTES_DEFAULT + 1) / 57)));
    expect(small.length).toBeGreaterThan(SMALL_COPIES_BYTES_DEFAULT);
    await f.store.put({ bucket: "b", key: "big", body: bodyOf(small), length: small.length, userMetadata: {}, systemMetadata: {} });
    await f.store.settle();
    // The newest version's records are on the two suspects and three others; hide it from
    // one of the unsuspected four, so that the four asked first cannot decide alone.
    const [newest] = (await (shards[0] as FaultyNode).inner.getRecords("d0", "b", "big")) as ObjectRecord[];
    f.suspects.nodes.add((shards[4] as FaultyNode).nodeId);
    f.suspects.nodes.add((shards[5] as FaultyNode).nodeId);
    await (shards[0] as FaultyNode).inner.deleteRecord("d0", "b", "big", (newest as ObjectRecord).versionId);
    for (const node of f.nodes) node.calls.length = 0;
    expect((await get()).toString()).toBe(small.toString());
    expect(calls(shards[4] as FaultyNode, "getRecords") + calls(shards[5] as FaultyNode, "getRecords")).toBe(2);
  });

  /** Holds `node`'s record reads until the returned function is called (a hung node). */
  function hang(node: FaultyNode): () => void {
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const original = node.getRecords.bind(node);
    node.getRecords = async (...args) => {
      await gate;
      return original(...args);
    };
    return release;
  }

  it("a hung node not yet suspected costs a GET the hedge delay, not the record timeout, and its shard is not read", async () => {
    const shards = byShard("big");
    const hung = shards[1] as FaultyNode;
    const release = hang(hung);
    try {
      const started = Date.now();
      expect((await get()).equals(bytes)).toBe(true);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(RECORD_HEDGE_MS - 50);
      expect(elapsed).toBeLessThan(RECORD_READ_TIMEOUT_MS / 2);
      expect(calls(hung, "readShard")).toBe(0);
      // All six were asked: the two not in the quorum once the hedge delay passed.
      expect(f.nodes.filter((node) => node !== hung).every((node) => calls(node, "getRecords") === 1)).toBe(true);
    } finally {
      release();
    }
  });

  it("what the others cannot decide without a hung node (no version found) still waits for its answer", async () => {
    const hung = byShard("absent")[0] as FaultyNode;
    const release = hang(hung);
    const waitMs = RECORD_HEDGE_MS + 400;
    setTimeout(release, waitMs);
    const started = Date.now();
    const error = await f.store.resolve("b", "absent").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TesseraError);
    expect((error as TesseraError).code).toBe("ERR_NOT_FOUND");
    expect(Date.now() - started).toBeGreaterThanOrEqual(waitMs - 50);
  });

  it("a node that just refused a connection is asked last, before the detector suspects it: no failed attempt", async () => {
    f.suspects.nodes.clear();
    const shards = byShard("big");
    const stopped = shards[0] as FaultyNode & { refusing?: () => boolean };
    stopped.fail({ error: down() });
    // What HttpNodeClient reports after ECONNREFUSED (core/http-node-client.ts, REFUSED_HINT_MS).
    let refusing = true;
    stopped.refusing = () => refusing;
    expect((await get()).equals(bytes)).toBe(true);
    expect(stopped.calls).toEqual([]);
    // Once the hint lapses the node is tried again: its record read fails, so the GET skips its shard.
    refusing = false;
    expect((await get()).equals(bytes)).toBe(true);
    expect({ records: calls(stopped, "getRecords"), shards: calls(stopped, "readShard") }).toEqual({ records: 1, shards: 0 });
  });

  it("without the detector's view, a dead data shard is tried once per GET, not once per stripe", async () => {
    f.suspects.nodes.clear();
    const shards = byShard("big");
    const dead = shards[1] as FaultyNode;
    dead.fail({ method: "readShard", error: down() });
    expect((await get()).equals(bytes)).toBe(true);
    expect(calls(dead, "readShard")).toBe(1);
    // Parity shard 4 took over from the first stripe, one reader for the rest of the object.
    expect(calls(shards[4] as FaultyNode, "readShard")).toBe(1);
  });

  it("a data shard that fails mid-object is replaced once; its stripes are rebuilt byte for byte", async () => {
    const shards = byShard("big");
    (shards[0] as FaultyNode).fail({ method: "readShard", afterPieces: 1, error: down() });
    (shards[3] as FaultyNode).fail({ method: "readShard", afterPieces: 1, error: down() });
    expect((await get()).equals(bytes)).toBe(true);
    for (const node of shards) expect(calls(node, "readShard")).toBeLessThanOrEqual(1);
  });
});
