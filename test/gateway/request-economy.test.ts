/**
 * How many internal requests the object layer makes for small objects (issue 7: each one is
 * an HTTP round trip to a node, the dominant cost of a 4 KiB PUT or GET). Counted with
 * FaultyNode's call log over memory nodes; the behaviour checked alongside each saving is
 * what makes it safe: a deleted bucket is refused at once, superseded versions are still
 * collected, a GET still finds the newest version when the first disks asked lack it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ObjectStore, BUCKET_SEEN_TTL_MS } from "../../gateway/objects/object-store.js";
import { Cluster } from "../../gateway/objects/cluster.js";
import { parseClusterMap } from "../../placement/cluster-map.js";
import { MemoryNode } from "../../storage-node/memory-node.js";
import { FaultyNode } from "../faulty-node.js";
import { isTesseraError } from "../../core/errors.js";

interface Fixture {
  readonly store: ObjectStore;
  readonly nodes: FaultyNode[];
  readonly memory: MemoryNode[];
}

function fixture(): Fixture {
  const map = parseClusterMap(
    { epoch: 1, ec: { k: 4, m: 2, blockSize: 64 * 1024 }, nodes: Array.from({ length: 6 }, (_, index) => ({ id: `n${index + 1}`, url: `http://127.0.0.1:${1 + index}`, disks: [{ id: "d0" }] })) },
    "request-economy map",
  );
  const memory = map.nodes.map((node) => new MemoryNode({ nodeId: node.id, diskIds: ["d0"] }));
  const nodes = memory.map((node) => new FaultyNode(node));
  const cluster = new Cluster(map, new Map(nodes.map((node) => [node.nodeId, node])));
  return { store: new ObjectStore({ cluster, repairs: { enqueue: () => {} } }), nodes, memory };
}

function count(nodes: readonly FaultyNode[], method: string): number {
  return nodes.reduce((sum, node) => sum + node.calls.filter((call) => call.method === method).length, 0);
}

function clearCalls(nodes: readonly FaultyNode[]): void {
  for (const node of nodes) node.calls.length = 0;
}

async function* bodyOf(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
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

describe("small-object request economy", () => {
  let f: Fixture;
  beforeEach(async () => {
    f = fixture();
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
    expect(count(f.nodes, "putRecord")).toBe(6);
  });

  it("an overwrite still collects the superseded version from every disk", async () => {
    await put(f.store, "k", "first");
    await put(f.store, "k", "second");
    await f.store.settle();
    expect(count(f.nodes, "getRecords")).toBe(6);
    for (const node of f.memory) {
      const versions = await node.getRecords("d0", "b", "k");
      expect(versions).toHaveLength(1);
    }
    expect(await get(f.store, "k")).toBe("second");
  });
});
