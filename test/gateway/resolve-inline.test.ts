/**
 * A record's inline shard counts only if it is that shard of that very object version
 * (gateway/objects/versions.ts, resolveNewest): a record carrying another version's or another
 * index's inline bytes, valid as they look, is not a holder, so the read uses parity instead
 * of decoding foreign bytes. Replay with TEST_SEED=<seed>.
 */
import { describe, expect, it } from "vitest";
import { ChecksumAlgorithm } from "../../core/checksum.js";
import type { ObjectRecord, ShardLocation } from "../../core/storage-api.js";
import { chooseBlockBytes } from "../../core/shard-format.js";
import { encodeInline } from "../../gateway/objects/put-object.js";
import { resolveNewest, type RecordRead } from "../../gateway/objects/versions.js";
import { Prng, seedFromEnv } from "../prng.js";
import { contractRecord } from "../storage-contract.js";

const SEED = seedFromEnv(0x1a11e5);
const K = 4;
const M = 2;
const OBJECT_BYTES = 4096;

async function inlineShards(prng: Prng, objectId: string, versionId: string): Promise<Map<number, Buffer>> {
  const blockBytes = chooseBlockBytes(OBJECT_BYTES, K, K * 64 * 1024);
  const params = { checksumAlgorithm: ChecksumAlgorithm.Crc32c, k: K, m: M, blockBytes, partNumber: 0, objectLength: OBJECT_BYTES, objectId: Buffer.from(objectId, "hex"), versionId: Buffer.from(versionId, "hex") };
  async function* body(): AsyncGenerator<Buffer> {
    yield prng.bytes(OBJECT_BYTES);
  }
  return (await encodeInline(params, body())).inline;
}

describe(`inline shards in resolveNewest (seed ${SEED})`, () => {
  it("counts a disk only when its inline shard names this object, version and shard index", async () => {
    const prng = new Prng(SEED);
    const placement: ShardLocation[] = Array.from({ length: K + M }, (_, shardIndex) => ({ shardIndex, nodeId: `n${shardIndex + 1}`, diskId: "d0" }));
    const base = contractRecord(prng, { bucket: "b", key: "k", size: OBJECT_BYTES, placement, ec: { k: K, m: M, blockBytes: chooseBlockBytes(OBJECT_BYTES, K, K * 64 * 1024), checksumAlgorithm: ChecksumAlgorithm.Crc32c } });
    const own = await inlineShards(prng, base.objectId, base.versionId);
    const otherVersion = await inlineShards(prng, base.objectId, contractRecord(prng, { bucket: "b", key: "k" }).versionId);
    const otherObject = await inlineShards(prng, contractRecord(prng, { bucket: "b", key: "k" }).objectId, base.versionId);
    const readsWith = (inline: (shardIndex: number) => Buffer | undefined): RecordRead[] =>
      placement.map((location) => ({ location, records: [{ ...base, inline: inline(location.shardIndex) } satisfies ObjectRecord] }));

    const healthy = resolveNewest(readsWith((index) => own.get(index)), { write: K + 1, copies: 0 });
    expect([...(healthy?.holders.keys() ?? [])].sort()).toEqual([0, 1, 2, 3, 4, 5]);

    // Disk 0 holds another version's shard 0, disk 1 another object's shard 1: neither counts,
    // and the other four still make k.
    const foreign = resolveNewest(readsWith((index) => (index === 0 ? otherVersion.get(0) : index === 1 ? otherObject.get(1) : own.get(index))), { write: K + 1, copies: 0 });
    expect(foreign?.record.versionId).toBe(base.versionId);
    expect([...(foreign?.holders.keys() ?? [])].sort()).toEqual([2, 3, 4, 5]);

    // Disk 2 holds its own object's shard 3: not shard 2, so it does not count either.
    const misplaced = resolveNewest(readsWith((index) => (index === 2 ? own.get(3) : own.get(index))), { write: K + 1, copies: 0 });
    expect([...(misplaced?.holders.keys() ?? [])].sort()).toEqual([0, 1, 3, 4, 5]);
  });
});
