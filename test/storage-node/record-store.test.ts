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
import { recordToWire } from "../../core/internal-api.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import { LmdbOrderedStore } from "../../storage-node/lmdb-store.js";
import { MemoryOrderedStore, type OrderedStore, type RangeQuery, type StoreEntry, type StoreTable, type StoreWriter } from "../../storage-node/ordered-store.js";
import { afterObjectKey, keyPrefixStart, objectKeyStart, recordKey } from "../../storage-node/record-keys.js";
import { decodeRecord, encodeRecord, normalizeRecord } from "../../storage-node/record-rules.js";
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

describe.each(stores)("entries read from the %s store", (_name, makeStore) => {
  it("are the caller's own: later reads, overwrites and removals leave them as they were read", async () => {
    const prng = new Prng(seed + 2);
    const store = await makeStore();
    const keys = Array.from({ length: 8 }, (_, at) => Buffer.from(`key-${at}`, "utf8"));
    const values = keys.map((_, at) => prng.bytes(at % 2 === 0 ? 24 : 5000));
    await store.write((writer) => keys.forEach((key, at) => writer.put("records", key, values[at] as Buffer)));
    const read = [...store.range("records", { start: Buffer.from("key-", "utf8"), end: Buffer.from("key.", "utf8") })];
    const single = store.get("records", keys[0] as Buffer);
    await store.write((writer) => keys.forEach((key, at) => (at % 2 === 0 ? writer.put("records", key, Buffer.alloc(values[at]?.length ?? 0, 0xee)) : writer.remove("records", key))));
    for (const _entry of store.range("records", { start: Buffer.from("key-", "utf8"), end: Buffer.from("key.", "utf8") }));
    expect(read.map((entry) => entry.key)).toEqual(keys);
    expect(read.map((entry) => entry.value)).toEqual(values);
    expect(single).toEqual(values[0]);
    await store.close();
  });
});

describe.each(stores)("a write transaction of the %s store", (_name, makeStore) => {
  it("is all or nothing, sees its own writes, and counts what the transaction found", async () => {
    const store = await makeStore();
    const key = (text: string): Buffer => Buffer.from(text, "utf8");
    const text = (value: Buffer | undefined): string | undefined => value?.toString("utf8");
    await store.write((writer) => {
      writer.put("meta", key("a"), key("1"));
      writer.put("meta", key("c"), key("3"));
    });
    // Concurrent writes share one LMDB commit: the one that throws after writing leaves
    // nothing of its own, and takes nothing of the others with it.
    const [failed, other] = await Promise.allSettled([
      store.write((writer) => {
        writer.put("meta", key("b"), key("2"));
        writer.remove("meta", key("a"));
        throw new Error("a bug after writing");
      }),
      store.write((writer) => writer.put("meta", key("d"), key("4"))),
    ]);
    expect(failed.status === "rejected" && String(failed.reason)).toContain("a bug after writing");
    expect(other.status).toBe("fulfilled");
    expect([key("a"), key("b"), key("d")].map((each) => text(store.get("meta", each)))).toEqual(["1", undefined, "4"]);
    const seen = await store.write((writer) => {
      const before = writer.count("meta", { start: key("a"), end: key("z") });
      writer.put("meta", key("b"), key("2"));
      writer.remove("meta", key("c"));
      return {
        before,
        own: text(writer.get("meta", key("b"))),
        removed: text(writer.get("meta", key("c"))),
        // Its own write of b is not counted; the end is exclusive; so is the start when asked.
        between: writer.count("meta", { start: key("a"), end: key("d"), exclusiveStart: true }),
      };
    });
    expect(seen).toEqual({ before: 3, own: "2", removed: undefined, between: 1 });
    // An earlier action of the same commit is seen (two versions of a key in one record batch).
    const [, later] = await Promise.all([
      store.write((writer) => writer.put("meta", key("e"), key("5"))),
      store.write((writer) => ({ counted: writer.count("meta", { start: key("e"), end: key("f") }), read: text(writer.get("meta", key("e"))) })),
    ]);
    expect(later).toEqual({ counted: 1, read: "5" });
    expect([...store.range("meta", { start: key("a"), end: key("z") })].map((entry) => text(entry.key))).toEqual(["a", "b", "d", "e"]);
    await store.close();
  });
});

describe("the stored record encoding", () => {
  const full: ObjectRecord = {
    ...record(new Prng(seed + 3), "k/é ✓\u{10ffff}", "0".repeat(31) + "1", true),
    contentType: "text/plain",
    userMetadata: { owner: "me", "x-quote": '"\\\n' },
    systemMetadata: { "cache-control": "no-cache" },
    parts: [{ partNumber: 1, partVersionId: "a".repeat(32), size: 5, etag: "e1", blockBytes: 16 }],
    inline: new Prng(seed + 4).bytes(4099),
  };

  it("decodes what it encodes, field for field, with and without an inline payload", () => {
    const { inline: _inline, ...bare } = full;
    for (const input of [full, bare] as ObjectRecord[]) {
      const decoded = decodeRecord(encodeRecord(normalizeRecord(input)));
      expect(decoded).toEqual(input);
      expect(Buffer.isBuffer(decoded.inline)).toBe(input.inline !== undefined);
    }
  });

  it("is byte for byte format 1: a 0x01 byte, then the record's JSON with the payload in base64, last", () => {
    const { inline, ...rest } = normalizeRecord(full);
    const expected = Buffer.concat([Buffer.of(1), Buffer.from(JSON.stringify({ ...rest, inline: inline?.toString("base64") }), "utf8")]);
    expect(encodeRecord(normalizeRecord(full))).toEqual(expected);
  });

  it("is read back as JSON text that is exactly the wire form, for every version of a key (getRecordsJson)", async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), "tessera-test-records-"));
    roots.push(root);
    const records = new RecordStore(LmdbOrderedStore.open(root));
    const { inline: _inline, ...bare } = full;
    await records.putRecord(full);
    await records.putRecord({ ...bare, versionId: "0".repeat(31) + "2" });
    const texts = records.getRecordsJson(full.bucket, full.key);
    expect(texts).toEqual(records.getRecords(full.bucket, full.key).map((stored) => JSON.stringify(recordToWire(stored))));
    expect(texts).toHaveLength(2);
    expect(records.getRecordsJson(full.bucket, `${full.key}-absent`)).toEqual([]);
    expect(() => records.getRecordsJson("", full.key)).toThrow(/bucket/);
    await records.close();
  });

  it("is taken from the record when it is put: changing the caller's payload afterwards changes nothing stored", async () => {
    // Over LMDB, whose write transaction runs after putRecord has returned its promise.
    const root = await mkdtemp(path.join(os.tmpdir(), "tessera-test-records-"));
    roots.push(root);
    const records = new RecordStore(LmdbOrderedStore.open(root));
    const payload = Buffer.from(full.inline as Buffer);
    const put = records.putRecord({ ...full, inline: payload });
    payload.fill(0);
    expect((await put).result).toBe("stored");
    expect(records.getRecords(full.bucket, full.key)[0]?.inline).toEqual(full.inline);
    await records.close();
  });
});

describe("record validation", () => {
  const good = record(new Prng(seed + 5), "k", "0".repeat(31) + "1", true);
  const cases: [string, Partial<Record<keyof ObjectRecord, unknown>>, string][] = [
    ["a lone surrogate in the key", { key: "a\ud800b" }, "record.key: must be valid Unicode (no lone surrogates)"],
    ["a key of 1025 UTF-8 bytes in 513 UTF-16 units", { key: "😀".repeat(256) + "k" }, "record.key: must be at most 1024 UTF-8 bytes, got 1025"],
    ["an upper-case version id", { versionId: "A".repeat(32) }, `record.versionId: must be 32 lowercase hex characters, got "${"A".repeat(32)}"`],
    ["an etag of 1026 UTF-8 bytes", { etag: "é".repeat(513) }, "record.etag: must be a string of at most 1024 bytes"],
    ["a shard index placed twice", { placement: [0, 0].map((shardIndex) => ({ shardIndex, nodeId: "n1", diskId: "d1" })) }, "placement[1].shardIndex: must be a distinct integer in 0..2"],
    ["a shard index past k + m", { placement: [{ shardIndex: 3, nodeId: "n1", diskId: "d1" }] }, "placement[0].shardIndex: must be a distinct integer in 0..2"],
    ["a node id with a slash", { placement: [{ shardIndex: 0, nodeId: "n/1", diskId: "d1" }] }, 'placement[0].nodeId: must match /^[a-z0-9][a-z0-9_-]{0,62}$/i, got "n/1"'],
    ["a part with a bad version id", { parts: [{ partNumber: 1, partVersionId: "x", size: 1, etag: "e", blockBytes: 16 }] }, 'parts[0].partVersionId: must be 32 lowercase hex characters, got "x"'],
    ["an inline payload that is not bytes", { inline: "text" }, "record.inline: must be a Buffer"],
  ];

  it.each(cases)("refuses %s, naming the field", (_label, change, message) => {
    expect(() => normalizeRecord({ ...good, ...change } as ObjectRecord)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT", message }));
  });

  it("takes keys and strings right at their byte limits", () => {
    for (const key of ["😀".repeat(256), "é".repeat(512), "k".repeat(1024)]) expect(normalizeRecord({ ...good, key }).key).toBe(key);
    expect(normalizeRecord({ ...good, etag: "é".repeat(512) }).etag).toBe("é".repeat(512));
  });
});
