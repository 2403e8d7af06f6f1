/**
 * The ordered store on one disk: one LMDB environment under <disk>/records, one named
 * database per table, binary keys and values. LMDB commits are atomic and copy-on-write, so
 * a crash at any moment leaves the last committed state, never a torn record.
 */
import { open, type Database, type RootDatabase } from "lmdb";
import { assert } from "../core/assert.js";
import { STORE_TABLES, stagedWriter, type OrderedStore, type RangeQuery, type StoreEntry, type StoreTable, type StoreWriter } from "./ordered-store.js";

/**
 * LMDB page size. 8 KiB raises LMDB's key ceiling from 1978 to 4026 bytes, which the
 * longest placement key (two names, a 255-byte bucket, a 1024-byte key escaped) needs.
 */
const LMDB_PAGE_BYTES = 8192;
/** Named databases in the environment: one per table, with room for later tables. */
const LMDB_DATABASES_MAX = 16;
/** LMDB's key ceiling at LMDB_PAGE_BYTES. */
export const LMDB_KEY_BYTES_MAX = 4026;

export class LmdbOrderedStore implements OrderedStore {
  readonly #env: RootDatabase<Buffer, Buffer>;
  readonly #tables: Map<StoreTable, Database<Buffer, Buffer>>;

  private constructor(env: RootDatabase<Buffer, Buffer>, tables: Map<StoreTable, Database<Buffer, Buffer>>) {
    this.#env = env;
    this.#tables = tables;
  }

  /** Opens (creating if needed) the environment in directory `path`. */
  static open(path: string): LmdbOrderedStore {
    const env = open<Buffer, Buffer>({ path, maxDbs: LMDB_DATABASES_MAX, pageSize: LMDB_PAGE_BYTES, keyEncoding: "binary", encoding: "binary" });
    const tables = new Map<StoreTable, Database<Buffer, Buffer>>();
    for (const table of STORE_TABLES) {
      tables.set(table, env.openDB<Buffer, Buffer>({ name: table, keyEncoding: "binary", encoding: "binary" }));
    }
    return new LmdbOrderedStore(env, tables);
  }

  #table(table: StoreTable): Database<Buffer, Buffer> {
    const found = this.#tables.get(table);
    assert(found !== undefined, "every table is opened with the environment");
    return found;
  }

  get(table: StoreTable, key: Buffer): Buffer | undefined {
    assert(key.length <= LMDB_KEY_BYTES_MAX, "keys are validated to fit LMDB");
    return this.#table(table).get(key);
  }

  *range(table: StoreTable, query: RangeQuery): Iterable<StoreEntry> {
    const options = { start: query.start, end: query.end, exclusiveStart: query.exclusiveStart === true, ...(query.limit === undefined ? {} : { limit: query.limit }) };
    // With binary encodings lmdb-js hands out each key and value as a fresh Buffer of its own
    // (a copy out of the map, never its reused read buffer), so they are passed on as they are;
    // record-store.test.ts checks entries outlive later reads and writes.
    for (const { key, value } of this.#table(table).getRange(options)) {
      assert(Buffer.isBuffer(key) && Buffer.isBuffer(value), "binary encodings read as Buffers");
      yield { key, value };
    }
  }

  async write<T>(action: (writer: StoreWriter) => T): Promise<T> {
    const result = await this.#env.transaction(() => {
      // Staged and applied once the action returns: all or nothing, as a child transaction
      // gives, without a nested begin and commit per action (the record writes of a batch
      // share one commit; the nesting was about 7% of a node's CPU on small PUTs). An LMDB
      // error while applying fails the whole transaction: LMDB refuses to commit it.
      const { writer, apply } = stagedWriter({
        get: (table, key) => this.get(table, key),
        count: (table, query) => this.#table(table).getKeysCount({ start: query.start, end: query.end, exclusiveStart: query.exclusiveStart === true }),
      });
      const value = action({
        ...writer,
        put: (table, key, bytes) => {
          assert(key.length <= LMDB_KEY_BYTES_MAX, "keys are validated to fit LMDB");
          writer.put(table, key, bytes);
        },
      });
      apply({ put: (table, key, bytes) => this.#table(table).putSync(key, bytes), remove: (table, key) => void this.#table(table).removeSync(key) });
      return value;
    });
    // Commits resolve when visible; durability (fsync) is the separate `flushed` promise.
    await this.#env.flushed;
    return result;
  }

  async close(): Promise<void> {
    await this.#env.close();
  }
}
