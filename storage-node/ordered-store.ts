/**
 * The ordered byte-key store the record store is written against: what it needs from LMDB,
 * and no more, so the memory node runs the very same record logic over a sorted array.
 * Keys compare as bytes (Buffer.compare, LMDB's memcmp). Values are opaque bytes.
 */
import { assert } from "../core/assert.js";

export type StoreTable = "records" | "placements" | "buckets" | "meta";
export const STORE_TABLES: readonly StoreTable[] = ["records", "placements", "buckets", "meta"];

export interface RangeQuery {
  /** First key (inclusive unless exclusiveStart). */
  readonly start: Buffer;
  /** Keys stay below this one (exclusive). */
  readonly end: Buffer;
  readonly exclusiveStart?: boolean;
  readonly limit?: number;
}

export interface StoreEntry {
  readonly key: Buffer;
  readonly value: Buffer;
}

export interface StoreReader {
  get(table: StoreTable, key: Buffer): Buffer | undefined;
  /** Entries in ascending key order. */
  range(table: StoreTable, query: RangeQuery): Iterable<StoreEntry>;
}

export interface StoreWriter {
  /** Sees the transaction's own earlier writes. */
  get(table: StoreTable, key: Buffer): Buffer | undefined;
  /**
   * Keys in a range (`limit` ignored), as the transaction found them: this action's own
   * writes are not counted (read before writing, as OrderedStore.write asks).
   */
  count(table: StoreTable, query: RangeQuery): number;
  put(table: StoreTable, key: Buffer, value: Buffer): void;
  remove(table: StoreTable, key: Buffer): void;
}

export interface OrderedStore extends StoreReader {
  /**
   * Runs `action` as one atomic write transaction; resolves once it is durable. `action`
   * must validate and read before its first write: a throw after a write is a bug.
   */
  write<T>(action: (writer: StoreWriter) => T): Promise<T>;
  close(): Promise<void>;
}

/** Index of the first key >= `key` (or > `key` when `after`) in a sorted array. */
function lowerBound(keys: readonly Buffer[], key: Buffer, after: boolean): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const order = Buffer.compare(keys[middle] as Buffer, key);
    if (order < 0 || (after && order === 0)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** One table: sorted keys plus values by hex key. Inserts are O(n): fine for tests. */
class MemoryTable {
  readonly keys: Buffer[] = [];
  readonly values = new Map<string, Buffer>();

  get(key: Buffer): Buffer | undefined {
    return this.values.get(key.toString("hex"));
  }

  put(key: Buffer, value: Buffer): void {
    const id = key.toString("hex");
    if (!this.values.has(id)) this.keys.splice(lowerBound(this.keys, key, false), 0, Buffer.from(key));
    this.values.set(id, Buffer.from(value));
  }

  remove(key: Buffer): void {
    const id = key.toString("hex");
    if (!this.values.delete(id)) return;
    const at = lowerBound(this.keys, key, false);
    assert(this.keys[at]?.equals(key) === true, "a stored key is in the sorted array");
    this.keys.splice(at, 1);
  }

  count(query: RangeQuery): number {
    const first = lowerBound(this.keys, query.start, query.exclusiveStart === true);
    return Math.max(0, lowerBound(this.keys, query.end, false) - first);
  }

  *range(query: RangeQuery): Iterable<StoreEntry> {
    let at = lowerBound(this.keys, query.start, query.exclusiveStart === true);
    for (let count = 0; count < (query.limit ?? Infinity) && at < this.keys.length; count++, at++) {
      const key = this.keys[at] as Buffer;
      if (Buffer.compare(key, query.end) >= 0) return;
      const value = this.values.get(key.toString("hex"));
      assert(value !== undefined, "every sorted key has a value");
      yield { key: Buffer.from(key), value: Buffer.from(value) };
    }
  }
}

/** The memory node's store: same contract as LMDB's, atomic by staging writes. */
export class MemoryOrderedStore implements OrderedStore {
  readonly #tables = new Map<StoreTable, MemoryTable>(STORE_TABLES.map((table) => [table, new MemoryTable()]));

  #table(table: StoreTable): MemoryTable {
    const found = this.#tables.get(table);
    assert(found !== undefined, "every table exists");
    return found;
  }

  get(table: StoreTable, key: Buffer): Buffer | undefined {
    const value = this.#table(table).get(key);
    return value === undefined ? undefined : Buffer.from(value);
  }

  range(table: StoreTable, query: RangeQuery): Iterable<StoreEntry> {
    return this.#table(table).range(query);
  }

  async write<T>(action: (writer: StoreWriter) => T): Promise<T> {
    const { writer, apply } = stagedWriter({ get: (table, key) => this.get(table, key), count: (table, query) => this.#table(table).count(query) });
    const result = action(writer);
    apply({ put: (table, key, value) => this.#table(table).put(key, value), remove: (table, key) => this.#table(table).remove(key) });
    return result;
  }

  async close(): Promise<void> {}
}

/**
 * A writer whose puts and removes are held back until `apply`: an action that throws leaves
 * nothing (all or nothing, as OrderedStore.write promises); its reads see its own writes
 * first. Both stores write through one, LMDB inside its batch transaction.
 */
export function stagedWriter(read: Pick<StoreWriter, "get" | "count">): {
  writer: StoreWriter;
  apply: (target: Pick<StoreWriter, "put" | "remove">) => void;
} {
  // In order; an action writes a handful of keys, so its own latest write is found by a scan.
  const staged: { readonly table: StoreTable; readonly key: Buffer; readonly value: Buffer | undefined }[] = [];
  const writer: StoreWriter = {
    get: (table, key) => {
      for (let index = staged.length - 1; index >= 0; index--) {
        const own = staged[index];
        if (own !== undefined && own.table === table && own.key.equals(key)) return own.value;
      }
      return read.get(table, key);
    },
    count: (table, query) => read.count(table, query),
    put: (table, key, value) => void staged.push({ table, key, value }),
    remove: (table, key) => void staged.push({ table, key, value: undefined }),
  };
  const apply = (target: Pick<StoreWriter, "put" | "remove">): void => {
    for (const { table, key, value } of staged) {
      if (value === undefined) target.remove(table, key);
      else target.put(table, key, value);
    }
  };
  return { writer, apply };
}
