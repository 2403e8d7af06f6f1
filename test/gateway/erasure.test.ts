import { describe, expect, it } from "vitest";
import { ChecksumAlgorithm } from "../../core/checksum.js";
import { chooseBlockBytes, frameOffset, shardLayout } from "../../core/shard-format.js";
import type { StripeRange } from "../../core/storage-api.js";
import { decodeInline, decodeRange, type ShardSource } from "../../gateway/erasure/decode.js";
import { SHARD_HEADER_BYTES } from "../../core/limits.js";
import { FLUSH_LAG_CHUNKS, REUSED_CHUNK_BYTES_MIN, STRIPE_BUFFERS_PER_PUT, encodeObject, type EncodeParams, type ShardSink } from "../../gateway/erasure/encode.js";
import { healerStripeBudget, REBUILD_STRIPE_SETS_HELD, stripeBudget, stripeSetBytes } from "../../gateway/erasure/stripe-budget.js";
import { rebuildShardSet } from "../../gateway/healer/rebuild.js";
import { memoryShardSetIo } from "../../gateway/healer/shard-io.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0x5eed_e4c0);
/** Small stripes so that a few KiB of data spans many stripes. */
const CLUSTER_BLOCK_BYTES = 4 * 1024;

function paramsFor(prng: Prng, k: number, m: number, objectLength: number): EncodeParams {
  return {
    checksumAlgorithm: ChecksumAlgorithm.Crc32c,
    k,
    m,
    blockBytes: chooseBlockBytes(objectLength, k, k * CLUSTER_BLOCK_BYTES / 4),
    partNumber: 0,
    objectLength,
    objectId: prng.bytes(16),
    versionId: prng.bytes(16),
  };
}

/** Yields `data` in seeded random pieces, like a network body. */
async function* pieces(data: Buffer, prng: Prng): AsyncGenerator<Buffer> {
  let offset = 0;
  while (offset < data.length) {
    const size = prng.int(1, 3000);
    yield data.subarray(offset, offset + size);
    offset += size;
  }
}

function memorySink(store: Map<number, Buffer>, failing: ReadonlySet<number> = new Set()): ShardSink {
  return async (shardIndex, body, declaredBytes) => {
    const parts: Buffer[] = [];
    for await (const part of body) {
      parts.push(Buffer.from(part));
      if (failing.has(shardIndex)) throw new Error(`node of shard ${shardIndex} is down`);
    }
    const file = Buffer.concat(parts);
    expect(file.length).toBe(declaredBytes);
    store.set(shardIndex, file);
  };
}

interface Fault {
  /** Stripe (absolute) at which the shard fails: "error" throws, "corrupt" flips a byte. */
  readonly atStripe: number;
  readonly kind: "error" | "corrupt";
}

function memorySource(store: Map<number, Buffer>, params: EncodeParams, faults: Map<number, Fault>): ShardSource {
  const layout = shardLayout({ ...params, shardIndex: 0 });
  return async function* (shardIndex: number, range: StripeRange) {
    const file = store.get(shardIndex);
    if (file === undefined) throw new Error(`shard ${shardIndex} missing`);
    const fault = faults.get(shardIndex);
    for (let stripe = range.firstStripe; stripe < range.firstStripe + range.stripeCount; stripe++) {
      const frame = Buffer.from(file.subarray(frameOffset(layout, stripe), frameOffset(layout, stripe + 1)));
      if (fault !== undefined && stripe >= fault.atStripe) {
        if (fault.kind === "error") throw new Error(`shard ${shardIndex} failed at stripe ${stripe}`);
        frame[0] = (frame[0] ?? 0) ^ 0x40;
      }
      yield frame;
    }
  };
}

function pick<T>(prng: Prng, choices: readonly T[]): T {
  return choices[prng.int(0, choices.length - 1)] as T;
}

async function collect(iterable: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of iterable) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

async function encodeToMemory(prng: Prng, params: EncodeParams, data: Buffer): Promise<Map<number, Buffer>> {
  const store = new Map<number, Buffer>();
  await encodeObject(pieces(data, prng), params, memorySink(store), { writeQuorum: params.k + params.m });
  return store;
}

describe(`erasure encode/decode (seed ${seed})`, () => {
  it("round-trips whole objects and random ranges for several codes and sizes", async () => {
    const prng = new Prng(seed);
    for (const [k, m] of [[4, 2], [2, 1], [6, 3], [1, 0]] as const) {
      for (const size of [0, 1, 31, CLUSTER_BLOCK_BYTES, CLUSTER_BLOCK_BYTES * 3 + 5, prng.int(1, 40_000)]) {
        const params = paramsFor(prng, k, m, size);
        const data = prng.bytes(size);
        const store = await encodeToMemory(prng, params, data);
        const source = memorySource(store, params, new Map());
        expect((await collect(decodeRange(params, source, 0, size))).equals(data), `${k}+${m} size ${size} seed ${seed}`).toBe(true);
        for (let trial = 0; trial < 5 && size > 0; trial++) {
          const start = prng.int(0, size - 1);
          const end = prng.int(start, size);
          expect((await collect(decodeRange(params, source, start, end))).equals(data.subarray(start, end)), `${k}+${m} [${start},${end}) seed ${seed}`).toBe(true);
        }
      }
    }
  });

  it("reads through up to m failing or corrupt shards mid-stream and reports each one", async () => {
    const prng = new Prng(seed + 1);
    for (let trial = 0; trial < 40; trial++) {
      const [k, m] = prng.int(0, 1) === 0 ? [4, 2] : [6, 3];
      const size = prng.int(1, 60_000);
      const params = paramsFor(prng, k, m, size);
      const data = prng.bytes(size);
      const store = await encodeToMemory(prng, params, data);
      const stripes = shardLayout({ ...params, shardIndex: 0 }).stripeCount;
      const faults = new Map<number, Fault>();
      while (faults.size < prng.int(1, m)) {
        faults.set(prng.int(0, k + m - 1), { atStripe: prng.int(0, stripes - 1), kind: prng.int(0, 1) === 0 ? "error" : "corrupt" });
      }
      const failures: number[] = [];
      const got = await collect(decodeRange(params, memorySource(store, params, faults), 0, size, { onShardFailure: (index) => failures.push(index) }));
      expect(got.equals(data), `trial ${trial} faults ${JSON.stringify([...faults])} seed ${seed}`).toBe(true);
      const dataFaults = [...faults.keys()].filter((index) => index < k);
      for (const index of dataFaults) expect(failures, `trial ${trial}`).toContain(index);
    }
  });

  it("decodes in-memory (inline) shards: whole, ranges, and around up to m missing, short or corrupt shards, reporting each", async () => {
    const prng = new Prng(seed + 7);
    for (let trial = 0; trial < 60; trial++) {
      const [k, m] = pick(prng, [[4, 2], [2, 1], [6, 3], [1, 0]] as const);
      const size = prng.int(1, 20_000);
      const params = paramsFor(prng, k, m, size);
      const data = prng.bytes(size);
      const store = await encodeToMemory(prng, params, data);
      const shards: (Buffer | undefined)[] = Array.from({ length: k + m }, (_, index) => Buffer.from((store.get(index) as Buffer).subarray(SHARD_HEADER_BYTES)));
      const broken = new Map<number, "missing" | "short" | "corrupt">();
      if (m > 0 && trial % 2 === 1) {
        while (broken.size < prng.int(1, m)) broken.set(prng.int(0, k + m - 1), pick(prng, ["missing", "short", "corrupt"] as const));
      }
      for (const [index, kind] of broken) {
        const shard = shards[index] as Buffer;
        if (kind === "missing") shards[index] = undefined;
        else if (kind === "short") shards[index] = shard.subarray(0, shard.length - 1);
        else {
          const at = prng.int(0, shard.length - 1);
          shard[at] = (shard[at] as number) ^ 0x10;
        }
      }
      const start = trial % 3 === 0 ? 0 : prng.int(0, size - 1);
      const end = trial % 3 === 0 ? size : prng.int(start, size);
      const failures: number[] = [];
      const pieces: Buffer[] = [];
      for await (const piece of decodeInline(params, shards, start, end, { onShardFailure: (index) => failures.push(index) })) pieces.push(Buffer.from(piece));
      const what = `trial ${trial} ${k}+${m} [${start},${end}) broken ${JSON.stringify([...broken])} seed ${seed}`;
      expect(Buffer.concat(pieces).equals(data.subarray(start, end)), what).toBe(true);
      // Healthy data shards: the range comes out as one Buffer, as a small GET sends it.
      if (broken.size === 0 && end > start) expect(pieces.length, what).toBe(1);
      // A missing data shard is reported (a short or corrupt one only when the range reaches its bad bytes).
      for (const [index, kind] of broken) if (index < k && kind === "missing" && end > start) expect(failures, what).toContain(index);
    }
  });

  it("fails cleanly with ERR_READ_QUORUM when more than m shards are lost", async () => {
    const prng = new Prng(seed + 2);
    const params = paramsFor(prng, 4, 2, 20_000);
    const store = await encodeToMemory(prng, params, prng.bytes(20_000));
    const faults = new Map<number, Fault>([0, 1, 4].map((index) => [index, { atStripe: 1, kind: "error" }]));
    await expect(collect(decodeRange(params, memorySource(store, params, faults), 0, 20_000))).rejects.toMatchObject({ code: "ERR_READ_QUORUM" });
  });

  it("a healthy read hands out the sources' own bytes, cut as they arrived (no join, no copy); a degraded one still decodes", async () => {
    const prng = new Prng(seed + 8);
    const size = 3 * CLUSTER_BLOCK_BYTES + 7;
    const params = paramsFor(prng, 4, 2, size);
    const data = prng.bytes(size);
    const store = await encodeToMemory(prng, params, data);
    const layout = shardLayout({ ...params, shardIndex: 0 });
    const delivered = new Set<ArrayBufferLike>();
    // Each shard's frames in pieces of 1..999 bytes, each piece its own ArrayBuffer (as socket reads are).
    const cutSource = (missing: ReadonlySet<number>): ShardSource =>
      async function* (shardIndex: number, range: StripeRange) {
        if (missing.has(shardIndex)) throw new Error(`shard ${shardIndex} missing`);
        const file = store.get(shardIndex) as Buffer;
        const frames = file.subarray(frameOffset(layout, range.firstStripe), frameOffset(layout, range.firstStripe + range.stripeCount));
        for (let at = 0; at < frames.length; ) {
          const piece = Buffer.from(frames.subarray(at, at + prng.int(1, 999)));
          delivered.add(piece.buffer);
          at += piece.length;
          yield piece;
        }
      };
    const out: Buffer[] = [];
    for await (const part of decodeRange(params, cutSource(new Set()), 0, size)) out.push(part);
    expect(Buffer.concat(out).equals(data)).toBe(true);
    expect(out.every((part) => delivered.has(part.buffer))).toBe(true);
    const start = prng.int(0, size - 1);
    const end = prng.int(start, size);
    expect((await collect(decodeRange(params, cutSource(new Set([0, 2])), start, end))).equals(data.subarray(start, end))).toBe(true);
  });

  it("a read feeding a copy's encoder (nestedInHeldShare) starts with the stripe budget full and others waiting; another read waits", async () => {
    const prng = new Prng(seed + 9);
    const size = 3 * 1024 * 1024;
    const params = { ...paramsFor(prng, 4, 2, size), blockBytes: 1024 * 1024 };
    const data = prng.bytes(size);
    const store = await encodeToMemory(prng, params, data);
    const held = await stripeBudget.acquire(stripeBudget.capacityBytes - stripeBudget.usedBytes);
    const queued = stripeBudget.acquire(1);
    try {
      const nested = decodeRange(params, memorySource(store, params, new Map()), 0, size, { nestedInHeldShare: true });
      expect((await collect(nested)).equals(data)).toBe(true);
      const reader = decodeRange(params, memorySource(store, params, new Map()), 0, size)[Symbol.asyncIterator]();
      const plain = reader.next();
      let started = false;
      void plain.then(() => (started = true));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(started).toBe(false);
      held();
      (await queued)();
      expect((await plain).done).toBe(false);
      await reader.return(undefined); // releases its share
      expect(stripeBudget.usedBytes).toBe(0);
    } finally {
      held();
    }
  });

  it("a healer's rebuild of a large shard set holds a share of the healer's and the gateway's budgets, and waits while either is full", async () => {
    const prng = new Prng(seed + 10);
    const size = 6 * 1024 * 1024;
    const params = { ...paramsFor(prng, 4, 2, size), blockBytes: 1024 * 1024 };
    const store = await encodeToMemory(prng, params, prng.bytes(size));
    const set = { partNumber: 0, versionId: "v", params };
    const share = stripeSetBytes(params.blockBytes, 4, 2, REBUILD_STRIPE_SETS_HELD);
    expect(share).toBeLessThanOrEqual(healerStripeBudget.capacityBytes);
    for (const full of [healerStripeBudget, stripeBudget]) {
      const held = new Map([...store].filter(([index]) => index !== 1));
      const rebuilt = new Map<number, Buffer>();
      const blocker = await full.acquire(full.capacityBytes - full.usedBytes);
      let settled = false;
      // What both budgets held whenever it opened a shard for reading.
      const usedAtRead: number[][] = [];
      const io = memoryShardSetIo(set, held, rebuilt);
      const watched = { ...io, read: (...args: Parameters<typeof io.read>) => (usedAtRead.push([healerStripeBudget.usedBytes, stripeBudget.usedBytes]), io.read(...args)) };
      const rebuild = rebuildShardSet(watched, [1], new Set([1])).finally(() => (settled = true));
      try {
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(settled).toBe(false);
        expect(rebuilt.size).toBe(0);
      } finally {
        blocker();
      }
      expect((await rebuild).written).toEqual([1]);
      expect(rebuilt.get(1)?.equals(store.get(1) as Buffer)).toBe(true);
      expect(usedAtRead.length).toBeGreaterThanOrEqual(4);
      expect(usedAtRead.every(([healer, gateway]) => healer === share && gateway === share)).toBe(true);
      expect([healerStripeBudget.usedBytes, stripeBudget.usedBytes]).toEqual([0, 0]);
    }
  });

  it("commits with up to m failed shard writers and refuses below the write quorum", async () => {
    const prng = new Prng(seed + 3);
    const params = paramsFor(prng, 4, 2, 50_000);
    const data = prng.bytes(50_000);
    const store = new Map<number, Buffer>();
    const result = await encodeObject(pieces(data, prng), params, memorySink(store, new Set([5])), { writeQuorum: 5 });
    expect(result.committed).toBe(5);
    expect(result.shardErrors[5]).toBeInstanceOf(Error);
    expect((await collect(decodeRange(params, memorySource(store, params, new Map()), 0, 50_000))).equals(data)).toBe(true);
    await expect(encodeObject(pieces(data, prng), params, memorySink(new Map(), new Set([1, 3])), { writeQuorum: 5 })).rejects.toMatchObject({
      code: "ERR_WRITE_QUORUM",
    });
  });

  it("refuses a body shorter or longer than declared, committing nothing whole", async () => {
    const prng = new Prng(seed + 4);
    const params = paramsFor(prng, 4, 2, 10_000);
    for (const length of [9_999, 10_001]) {
      const store = new Map<number, Buffer>();
      const body = pieces(prng.bytes(length), prng);
      await expect(encodeObject(body, params, memorySink(store), { writeQuorum: 5 })).rejects.toMatchObject({ code: "ERR_INCOMPLETE_BODY" });
      expect(store.size, `length ${length}`).toBe(0);
    }
  });

  it("completes no shard when the body fails after its last byte (a bad signature at the end)", async () => {
    const prng = new Prng(seed + 6);
    const params = paramsFor(prng, 4, 2, 3 * CLUSTER_BLOCK_BYTES);
    const data = prng.bytes(params.objectLength);
    async function* failingAtEnd(): AsyncGenerator<Buffer> {
      yield* pieces(data, prng);
      throw new Error("chunk signature mismatch");
    }
    const store = new Map<number, Buffer>();
    await expect(encodeObject(failingAtEnd(), params, memorySink(store), { writeQuorum: 5 })).rejects.toThrow("chunk signature mismatch");
    expect(store.size).toBe(0);
  });

  it("observes every body byte in order (for MD5 and checksums)", async () => {
    const prng = new Prng(seed + 5);
    const data = prng.bytes(12_345);
    const seen: Buffer[] = [];
    await encodeObject(pieces(data, prng), paramsFor(prng, 4, 2, data.length), memorySink(new Map()), {
      writeQuorum: 6,
      observe: (piece) => seen.push(Buffer.from(piece)),
    });
    expect(Buffer.concat(seen).equals(data)).toBe(true);
  });

  describe("stripe memory reuse", () => {
    /** Chunks just big enough to be reused; a few dozen stripes. */
    const chunkBytes = REUSED_CHUNK_BYTES_MIN;
    const stripes = 6 * STRIPE_BUFFERS_PER_PUT + 1;

    function bigParams(prng: Prng, k: number, m: number): EncodeParams {
      return { checksumAlgorithm: ChecksumAlgorithm.Crc32c, k, m, blockBytes: k * chunkBytes, partNumber: 0, objectLength: stripes * k * chunkBytes - 5, objectId: prng.bytes(16), versionId: prng.bytes(16) };
    }

    /**
     * A sink at the edge of the contract: it keeps each chunk it takes uncopied and copies it
     * only when it takes the FLUSH_LAG_CHUNKS-th chunk after it (or at the end); `slow`
     * shards wait a few turns after each piece, with chunks held. Notes every chunk's memory.
     */
    function lateSink(store: Map<number, Buffer>, memory: Map<number, Set<ArrayBufferLike>>, slow: ReadonlySet<number>): ShardSink {
      return async (shardIndex, body) => {
        const done: Buffer[] = [];
        const held: Buffer[] = [];
        for await (const piece of body) {
          // Taking a piece and copying the chunk FLUSH_LAG_CHUNKS back are one step (no await
          // between): the contract is "copied by the time the later one is taken".
          if (piece.length !== chunkBytes) {
            done.push(Buffer.from(piece));
            if (slow.has(shardIndex)) for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          const seen = memory.get(shardIndex) ?? new Set();
          seen.add(piece.buffer);
          memory.set(shardIndex, seen);
          done.push(piece);
          held.push(piece);
          if (held.length > FLUSH_LAG_CHUNKS) {
            const oldest = held.shift() as Buffer;
            done[done.indexOf(oldest)] = Buffer.from(oldest);
          }
          if (slow.has(shardIndex)) for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
        }
        store.set(shardIndex, Buffer.concat(done.map((part) => (held.includes(part) ? Buffer.from(part) : part))));
      };
    }

    it("reuses a stripe's memory only once every writer is FLUSH_LAG_CHUNKS chunks past it: every shard stays exact", async () => {
      const prng = new Prng(seed + 11);
      for (const [k, m, slow] of [[4, 2, new Set<number>()], [2, 1, new Set([1])], [4, 2, new Set([0, 5])]] as const) {
        const params = bigParams(prng, k, m);
        const data = prng.bytes(params.objectLength);
        const expected = await encodeToMemory(prng, params, data);
        const store = new Map<number, Buffer>();
        const memory = new Map<number, Set<ArrayBufferLike>>();
        await encodeObject(pieces(data, prng), params, lateSink(store, memory, slow), { writeQuorum: k + m });
        for (let index = 0; index < k + m; index++) expect((store.get(index) as Buffer).equals(expected.get(index) as Buffer), `${k}+${m} slow ${[...slow].join(",")} shard ${index}`).toBe(true);
        // Parity chunks came from a handful of buffers, not one per stripe (the body's pieces
        // are small here, so data chunks are joined copies: reused too).
        if (slow.size === 0) for (let index = 0; index < k + m; index++) expect((memory.get(index) as Set<ArrayBufferLike>).size, `shard ${index}`).toBeLessThanOrEqual(STRIPE_BUFFERS_PER_PUT + 1);
      }
    });
  });
});
