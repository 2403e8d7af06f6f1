import { describe, expect, it } from "vitest";
import { TesseraError } from "../../core/errors.js";
import { frameOffset, shardLayout } from "../../core/shard-format.js";
import { MemoryNode } from "../../storage-node/memory-node.js";
import { FaultyNode } from "../faulty-node.js";
import { Prng, seedFromEnv } from "../prng.js";
import { codeOf, contractRecord, contractShard, inPieces, readAll, readOutcome, storageContract } from "../storage-contract.js";

// Without faults the wrapper is transparent: it passes the whole contract.
storageContract("FaultyNode without faults", async () => {
  const node = new FaultyNode(new MemoryNode({ nodeId: "mem1", diskIds: ["d1", "d2"] }));
  return { node, diskIds: ["d1", "d2"], cleanup: async () => {} };
});

describe("FaultyNode", () => {
  const prng = new Prng(seedFromEnv(0x5eed_0403));
  const diskFailed = (): TesseraError => new TesseraError("ERR_DISK_FAILED", "injected");

  it("fails the nth matching call, every matching call, or the nth call overall", async () => {
    const node = new FaultyNode(new MemoryNode({ nodeId: "mem1", diskIds: ["d1", "d2"] })).fail({ method: "putRecord", nth: 2, error: diskFailed() });
    const record = (key: string) => contractRecord(prng, { bucket: "faulty", key });
    expect(await codeOf(node.putRecord("d1", record("a")))).toBe("resolved");
    expect(await codeOf(node.putRecord("d1", record("b")))).toBe("ERR_DISK_FAILED");
    expect(await codeOf(node.putRecord("d1", record("c")))).toBe("resolved");
    expect((await node.listRecords("d1", { bucket: "faulty", limit: 10 })).records.map((stored) => stored.key)).toEqual(["a", "c"]);

    node.fail({ when: (call) => call.args[0] === "d2", error: diskFailed() });
    expect(await codeOf(node.getRecords("d2", "faulty", "a"))).toBe("ERR_DISK_FAILED");
    expect(await codeOf(node.listRecords("d2", { bucket: "faulty", limit: 1 }))).toBe("ERR_DISK_FAILED");
    expect(await codeOf(node.getRecords("d1", "faulty", "a"))).toBe("resolved");

    node.heal();
    node.failCall(node.calls.length + 2, new TesseraError("ERR_NODE_UNAVAILABLE", "injected"));
    expect(await codeOf(node.health())).toBe("resolved");
    expect(await codeOf(node.listBuckets())).toBe("ERR_NODE_UNAVAILABLE");
    expect(await codeOf(node.listBuckets())).toBe("resolved");
    expect(node.calls.map((call) => call.method).slice(-3)).toEqual(["health", "listBuckets", "listBuckets"]);
  });

  it("fails a read mid-stream after some pieces, and a write after some body pieces without committing it", async () => {
    const inner = new MemoryNode({ nodeId: "mem1", diskIds: ["d1"] });
    const node = new FaultyNode(inner);
    const shard = await contractShard(prng, { objectLength: 5 * 256 });
    await node.writeShard("d1", shard.id, inPieces(shard.file), shard.file.length);
    const checksum = new TesseraError("ERR_SHARD_CHECKSUM", "injected");
    node.fail({ method: "readShard", nth: 1, afterPieces: 1, error: checksum });
    const failed = await readOutcome(node.readShard("d1", shard.id));
    expect(failed.code).toBe("ERR_SHARD_CHECKSUM");
    // The memory node yields the header and then the verified frames of each read as one piece.
    expect(failed.bytes).toEqual(shard.file.subarray(0, frameOffset(shardLayout(shard.header), 0)));
    expect(await readAll(node.readShard("d1", shard.id))).toEqual(shard.file);

    const other = await contractShard(prng, { objectLength: 5 * 256 });
    node.fail({ method: "writeShard", afterPieces: 2, error: new TesseraError("ERR_NODE_UNAVAILABLE", "connection dropped") });
    expect(await codeOf(node.writeShard("d1", other.id, inPieces(other.file, 100), other.file.length))).toBe("ERR_NODE_UNAVAILABLE");
    expect((await readOutcome(inner.readShard("d1", other.id))).code).toBe("ERR_NOT_FOUND");
  });
});
