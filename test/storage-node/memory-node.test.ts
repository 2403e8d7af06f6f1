import { describe, expect, it } from "vitest";
import { shardLayout, frameOffset } from "../../core/shard-format.js";
import { MemoryNode } from "../../storage-node/memory-node.js";
import { Prng, seedFromEnv } from "../prng.js";
import { codeOf, contractRecord, contractShard, inPieces, readOutcome, storageContract } from "../storage-contract.js";

storageContract("MemoryNode", async () => {
  const node = new MemoryNode({ nodeId: "mem1", diskIds: ["d1", "d2"] });
  return { node, diskIds: ["d1", "d2"], cleanup: async () => {} };
});

describe("MemoryNode test hooks", () => {
  const seed = seedFromEnv(0x5eed_0401);
  const prng = new Prng(seed);

  it("corruptShard makes a read end with ERR_SHARD_CHECKSUM before the bad frame", async () => {
    const node = new MemoryNode({ nodeId: "mem1", diskIds: ["d1"] });
    const shard = await contractShard(prng, { objectLength: 4 * 256 });
    await node.writeShard("d1", shard.id, inPieces(shard.file), shard.file.length);
    const layout = shardLayout(shard.header);
    node.corruptShard("d1", shard.id, frameOffset(layout, 2) + 3);
    const whole = await readOutcome(node.readShard("d1", shard.id));
    expect(whole.code).toBe("ERR_SHARD_CHECKSUM");
    expect(whole.bytes).toEqual(shard.file.subarray(0, frameOffset(layout, 2)));
    const range = await readOutcome(node.readShard("d1", shard.id, { firstStripe: 1, stripeCount: 3 }));
    expect(range.code).toBe("ERR_SHARD_CHECKSUM");
    expect(range.bytes).toEqual(shard.file.subarray(frameOffset(layout, 1), frameOffset(layout, 2)));
  });

  it("failDisk refuses every call on that disk and reports it; capacity refuses with ERR_INSUFFICIENT_STORAGE", async () => {
    const node = new MemoryNode({ nodeId: "mem1", diskIds: ["d1", "d2"], capacityBytes: 2000 });
    // 16 stripes of 4 x 64-byte chunks: 80 + 16 * 68 = 1168 bytes; two do not fit in 2000.
    const shard = await contractShard(prng, { objectLength: 16 * 256 });
    node.failDisk("d1", "test");
    expect(await codeOf(node.writeShard("d1", shard.id, inPieces(shard.file), shard.file.length))).toBe("ERR_DISK_FAILED");
    expect(await codeOf(node.putRecord("d1", contractRecord(prng, { bucket: "ct-b", key: "k" })))).toBe("ERR_DISK_FAILED");
    await node.writeShard("d2", shard.id, inPieces(shard.file), shard.file.length);
    const second = await contractShard(prng, { objectLength: 16 * 256 });
    expect(await codeOf(node.writeShard("d2", second.id, inPieces(second.file), second.file.length))).toBe("ERR_INSUFFICIENT_STORAGE");
    const health = await node.health();
    expect(health.disks.map((disk) => [disk.diskId, disk.state])).toEqual([["d1", "failed"], ["d2", "full"]]);
    expect(await node.deleteShard("d2", shard.id)).toBe(true);
    expect((await node.health()).disks[1]?.state).toBe("ok");
  });
});
