/**
 * receiveShard (storage-node/shard-verify.ts), the upload path every adapter shares: it must
 * hold no piece once its sink took it (memory per upload stays bounded, and pieces die young
 * instead of being promoted and collected only by full garbage collections), and an abort
 * must still end a body stalled in its own await.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { receiveShard } from "../../storage-node/shard-verify.js";
import { Prng, seedFromEnv } from "../prng.js";
import { makeShard } from "./shards.js";

const seed = seedFromEnv(0x5eed_0418);
console.log(`receive-shard.test seed ${seed} (replay with TEST_SEED=${seed})`);
const prng = new Prng(seed);

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

describe("receiveShard", () => {
  it("keeps no reference to a piece its sink took, while the upload goes on", async () => {
    const shard = await makeShard(prng, { objectLength: 256 * 1024, blockBytes: 4096 });
    const pieceBytes = 1000;
    let release: () => void = () => undefined;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    let reachedStall: () => void = () => undefined;
    const atStall = new Promise<void>((resolve) => (reachedStall = resolve));
    const stallAt = (Math.ceil(shard.file.length / pieceBytes) - 3) * pieceBytes;
    async function* body(): AsyncGenerator<Buffer> {
      for (let at = 0; at < shard.file.length; at += pieceBytes) {
        if (at === stallAt) {
          reachedStall();
          await stalled;
        }
        // A fresh object per piece, as a network read gives.
        yield Buffer.from(shard.file.subarray(at, at + pieceBytes));
      }
    }
    const taken: WeakRef<Buffer>[] = [];
    const controller = new AbortController();
    const receiving = receiveShard(body(), shard.id, shard.file.length, async (bytes) => void taken.push(new WeakRef(bytes)), controller.signal);
    await atStall;
    for (let round = 0; round < 3; round++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    // The last piece taken may still be referenced by the loop; every earlier one is gone.
    const alive = taken.slice(0, -1).filter((ref) => ref.deref() !== undefined).length;
    expect(taken.length).toBeGreaterThan(50);
    expect(alive).toBe(0);
    release();
    expect((await receiving).objectLength).toBe(256 * 1024);
  });

  it("an abort ends a body stalled in its own await, and one that aborts between pieces", async () => {
    const shard = await makeShard(prng, { objectLength: 16 * 1024, blockBytes: 4096 });
    async function* stalledBody(): AsyncGenerator<Buffer> {
      yield shard.file.subarray(0, 500);
      await new Promise(() => undefined);
    }
    const controller = new AbortController();
    const receiving = receiveShard(stalledBody(), shard.id, shard.file.length, async () => undefined, controller.signal);
    setTimeout(() => controller.abort(new Error("closing")), 20);
    await expect(receiving).rejects.toMatchObject({ code: "ERR_NODE_UNAVAILABLE" });

    const between = new AbortController();
    let pieces = 0;
    const sink = async (): Promise<void> => {
      pieces += 1;
      if (pieces === 2) between.abort(new Error("closing"));
    };
    async function* body(): AsyncGenerator<Buffer> {
      for (let at = 0; at < shard.file.length; at += 100) yield shard.file.subarray(at, at + 100);
    }
    await expect(receiveShard(body(), shard.id, shard.file.length, sink, between.signal)).rejects.toMatchObject({ code: "ERR_NODE_UNAVAILABLE" });
    expect(pieces).toBe(2);
    const already = new AbortController();
    already.abort(new Error("closed"));
    await expect(receiveShard(body(), shard.id, shard.file.length, async () => undefined, already.signal)).rejects.toMatchObject({ code: "ERR_NODE_UNAVAILABLE" });
  });
});
