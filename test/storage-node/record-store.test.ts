/**
 * The record store's two promises that the contract cannot see from outside: binary keys
 * sort exactly as S3 lists (UTF-8 byte order, versions newest first, no key bleeding into
 * its neighbour), and a listing page costs reads proportional to the page, not the bucket.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ChecksumAlgorithm } from "../../core/checksum.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import { LmdbOrderedStore } from "../../storage-node/lmdb-store.js";
import { MemoryOrderedStore, type OrderedStore, type RangeQuery, type StoreEntry, type StoreTable, type StoreWriter } from "../../storage-node/ordered-store.js";
import { afterObjectKey, keyPrefixStart, objectKeyStart, recordKey } from "../../storage-node/record-keys.js";
import { RecordStore } from "../../storage-node/record-store.js";
import { Prng, seedFromEnv } from "../prng.js";

const seed = seedFromEnv(0x5eed_0404);
console.log(`record-store.test seed ${seed} (replay with TEST_SEED=${seed})`);

/** Characters that stress the encoding: NUL and 0x01 (the escape bytes), ASCII, 2-, 3- and 4-byte UTF-8. */
const ALPHABET = ["\u0000", "\u0001", "\u0002", "/", "a", "b", "\u007f", "é", "\u07ff", "\u0800", "\uffff", "😀", "\u{10ffff}"];

function randomKey(prng: Prng): string {
  const length = prng.int(1, 5);
  let key = "";
  for (let at = 0; at < length; at++) key += ALPHABET[prng.int(0, ALPHABET.length - 1)];
  return key;
}

function utf8Order(a: string, b: string): number {
  return Math.sign(Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
}

function hexVersion(prng: Prng): string {
  return prng.bytes(16).toString("hex");
}

describe("record keys", () => {
  it("sort in UTF-8 key order, each key's versions newest first and between its neighbours", () => {
    const prng = new Prng(seed);
    for (let trial = 0; trial < 3000; trial++) {
      const a = randomKey(prng);
      const b = randomKey(prng);
      const order = utf8Order(a, b);
      expect(Math.sign(Buffer.compare(objectKeyStart("bkt", a), objectKeyStart("bkt", b)))).toBe(order);
      const [low, high] = order <= 0 ? [a, b] : [b, a];
      const older = "0".repeat(31) + "1";
      const newer = "f".repeat(31) + "e";
      // Every version of the lower key sorts before the start of the higher one (unless equal).
      if (low !== high) expect(Buffer.compare(afterObjectKey("bkt", low), recordKey("bkt", high, newer))).toBeLessThan(0);
      expect(Buffer.compare(recordKey("bkt", low, newer), recordKey("bkt", low, older))).toBeLessThan(0);
      expect(Buffer.compare(recordKey("bkt", low, older), afterObjectKey("bkt", low))).toBeLessThan(0);
      // A byte prefix of the escaped key exactly when the key starts with the prefix.
      const prefixBytes = keyPrefixStart("bkt", a);
      const encoded = recordKey("bkt", b, older);
      const isPrefix = encoded.length >= prefixBytes.length && encoded.subarray(0, prefixBytes.length).equals(prefixBytes);
      expect(isPrefix).toBe(b.startsWith(a));
    }
  });
});

/** Counts every entry the record store reads, to check a page's cost. */
class CountingStore implements OrderedStore {
  reads = 0;
  constructor(readonly inner: OrderedStore) {}
  get(table: StoreTable, key: Buffer): Buffer | undefined {
    this.reads += 1;
    return this.inner.get(table, key);
  }
  *range(table: StoreTable, query: RangeQuery): Iterable<StoreEntry> {
    for (const entry of this.inner.range(table, query)) {
      this.reads += 1;
      yield entry;
    }
  }
  write<T>(action: (writer: StoreWriter) => T): Promise<T> {
    return this.inner.write(action);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function record(prng: Prng, key: string, versionId: string, onTarget: boolean): ObjectRecord {
  return {
    bucket: "cost",
    key,
    versionId,
    revision: 1,
    objectId: hexVersion(prng),
    deleteMarker: false,
    size: 1,
    etag: "e",
    lastModified: 1,
    userMetadata: {},
    systemMetadata: {},
    ec: { k: 2, m: 1, blockBytes: 16, checksumAlgorithm: ChecksumAlgorithm.Crc32c },
    placement: [0, 1, 2].map((shardIndex) => ({ shardIndex, nodeId: "n1", diskId: shardIndex === 0 && onTarget ? "target" : `d${shardIndex}` })),
    parts: [],
  };
}

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

const stores: [string, () => Promise<OrderedStore>][] = [
  ["memory", async () => new MemoryOrderedStore()],
  [
    "LMDB",
    async () => {
      const root = await mkdtemp(path.join(os.tmpdir(), "tessera-test-records-"));
      roots.push(root);
      return LmdbOrderedStore.open(root);
    },
  ],
];

describe.each(stores)("a listing page over the %s store", (_name, makeStore) => {
  it("reads about one entry per key returned, however many keys and versions the bucket holds", async () => {
    const prng = new Prng(seed + 1);
    const counting = new CountingStore(await makeStore());
    const records = new RecordStore(counting);
    const keys = Array.from({ length: 200 }, (_, at) => `key/${String(at).padStart(4, "0")}`);
    for (const key of keys) {
      for (let version = 0; version < 10; version++) await records.putRecord(record(prng, key, hexVersion(prng), version === 0));
    }
    const pages: [string, () => unknown, number][] = [
      ["first page", () => records.listRecords({ bucket: "cost", limit: 10 }), 10],
      ["middle, by start key", () => records.listRecords({ bucket: "cost", startAfter: "key/0150", limit: 10 }), 10],
      ["by prefix", () => records.listRecords({ bucket: "cost", prefix: "key/02", limit: 25 }), 25],
      ["placement", () => records.listByPlacement({ nodeId: "n1", diskId: "target", limit: 10 }), 10],
    ];
    for (const [label, list, limit] of pages) {
      counting.reads = 0;
      list();
      // One seek per key, plus one to learn whether more follow; the placement page also
      // fetches each record (a get per entry).
      expect(counting.reads, label).toBeLessThanOrEqual(2 * limit + 2);
    }
    const page = records.listRecords({ bucket: "cost", startAfter: "key/0150", limit: 10 });
    expect(page.records.map((stored) => stored.key)).toEqual(keys.slice(151, 161));
    expect(page.nextStartAfter).toBe("key/0160");
    await records.close();
  });
});
