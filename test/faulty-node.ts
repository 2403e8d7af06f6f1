/**
 * A StorageNode that wraps another and fails chosen calls, after MinIO's naughty disk: a
 * fault is one line in a test.
 *
 *   const node = new FaultyNode(inner).fail({ method: "writeShard", nth: 2, error: diskFailed() });
 *   node.fail({ method: "readShard", afterPieces: 3, error: checksumError() }); // mid-stream
 *   node.failCall(7, unavailable());                                            // the 7th call of any kind
 *
 * Calls that no fault matches go to the inner node unchanged. Every call is logged in `calls`.
 */
import type {
  BucketRecord,
  HexId,
  LeaseFence,
  LeaseGrant,
  LeaseRequest,
  ListRecordsOptions,
  ListRecordsPage,
  NodeHealth,
  ObjectRecord,
  PlacementPage,
  PlacementQuery,
  ShardListPage,
  ShardListQuery,
  PutRecordReply,
  ShardId,
  StorageNode,
  StripeRange,
} from "../core/storage-api.js";

export type StorageMethod = Exclude<keyof StorageNode, "nodeId">;

export interface StorageCall {
  readonly method: StorageMethod;
  readonly args: readonly unknown[];
  /** 1-based position among all calls made through this wrapper. */
  readonly index: number;
}

export interface Fault {
  /** Only calls of this method (default: any method). */
  readonly method?: StorageMethod;
  /** Only calls this predicate accepts (e.g. `(call) => call.args[0] === "d2"`). */
  readonly when?: (call: StorageCall) => boolean;
  /** Fail only the nth call that matches (1-based); without it, every matching call fails. */
  readonly nth?: number;
  readonly error: Error | ((call: StorageCall) => Error);
  /**
   * Streams only: readShard yields this many pieces and then fails; writeShard lets the
   * inner node consume this many body pieces and then the body fails (a dropped upload).
   * Without it the call fails before anything is read or sent.
   */
  readonly afterPieces?: number;
}

interface ArmedFault {
  readonly fault: Fault;
  matched: number;
}

export class FaultyNode implements StorageNode {
  readonly inner: StorageNode;
  readonly calls: StorageCall[] = [];
  readonly #faults: ArmedFault[] = [];

  constructor(inner: StorageNode) {
    this.inner = inner;
  }

  get nodeId(): string {
    return this.inner.nodeId;
  }

  /** Adds a fault; returns this, so a wrapper and its fault fit on one line. */
  fail(fault: Fault): this {
    if (fault.nth !== undefined && !(Number.isInteger(fault.nth) && fault.nth >= 1)) throw new Error(`fault.nth must be an integer >= 1, got ${fault.nth}`);
    this.#faults.push({ fault, matched: 0 });
    return this;
  }

  /** Fails the `index`th call made through this wrapper, whatever its method. */
  failCall(index: number, error: Error): this {
    return this.fail({ when: (call) => call.index === index, error });
  }

  /** Removes every fault (the call log stays). */
  heal(): void {
    this.#faults.length = 0;
  }

  /** Logs the call and returns the fault it triggers, if any (every matching fault counts it). */
  #enter(method: StorageMethod, args: readonly unknown[]): { call: StorageCall; fault?: Fault } {
    const call: StorageCall = { method, args, index: this.calls.length + 1 };
    this.calls.push(call);
    let triggered: Fault | undefined;
    for (const armed of this.#faults) {
      const { fault } = armed;
      if (fault.method !== undefined && fault.method !== method) continue;
      if (fault.when !== undefined && !fault.when(call)) continue;
      armed.matched += 1;
      if (triggered === undefined && (fault.nth === undefined || fault.nth === armed.matched)) triggered = fault;
    }
    return triggered === undefined ? { call } : { call, fault: triggered };
  }

  async #call<T>(method: StorageMethod, args: readonly unknown[], run: () => Promise<T>): Promise<T> {
    const { call, fault } = this.#enter(method, args);
    if (fault !== undefined) throw errorOf(fault, call);
    return run();
  }

  async writeShard(diskId: string, shard: ShardId, body: AsyncIterable<Buffer>, declaredBytes: number): Promise<void> {
    const { call, fault } = this.#enter("writeShard", [diskId, shard, body, declaredBytes]);
    if (fault === undefined) return this.inner.writeShard(diskId, shard, body, declaredBytes);
    if (fault.afterPieces === undefined) throw errorOf(fault, call);
    const error = errorOf(fault, call);
    try {
      await this.inner.writeShard(diskId, shard, failingAfter(body, fault.afterPieces, error), declaredBytes);
    } catch {
      // Whatever the inner node made of the dropped body, the caller sees the fault.
    }
    throw error;
  }

  async *readShard(diskId: string, shard: ShardId, range?: StripeRange): AsyncGenerator<Buffer> {
    const { call, fault } = this.#enter("readShard", [diskId, shard, range]);
    if (fault === undefined) {
      yield* this.inner.readShard(diskId, shard, range);
      return;
    }
    const error = errorOf(fault, call);
    if (fault.afterPieces === undefined) throw error;
    yield* failingAfter(this.inner.readShard(diskId, shard, range), fault.afterPieces, error);
  }

  deleteShard(diskId: string, shard: ShardId): Promise<boolean> {
    return this.#call("deleteShard", [diskId, shard], () => this.inner.deleteShard(diskId, shard));
  }

  putRecord(diskId: string, record: ObjectRecord, fence?: LeaseFence): Promise<PutRecordReply> {
    return this.#call("putRecord", [diskId, record, fence], () => this.inner.putRecord(diskId, record, fence));
  }

  acquireLease(diskId: string, request: LeaseRequest): Promise<LeaseGrant> {
    return this.#call("acquireLease", [diskId, request], () => this.inner.acquireLease(diskId, request));
  }

  releaseLease(diskId: string, bucket: string, key: string, fence: LeaseFence): Promise<boolean> {
    return this.#call("releaseLease", [diskId, bucket, key, fence], () => this.inner.releaseLease(diskId, bucket, key, fence));
  }

  getRecords(diskId: string, bucket: string, key: string): Promise<ObjectRecord[]> {
    return this.#call("getRecords", [diskId, bucket, key], () => this.inner.getRecords(diskId, bucket, key));
  }

  deleteRecord(diskId: string, bucket: string, key: string, versionId: HexId): Promise<boolean> {
    return this.#call("deleteRecord", [diskId, bucket, key, versionId], () => this.inner.deleteRecord(diskId, bucket, key, versionId));
  }

  listRecords(diskId: string, options: ListRecordsOptions): Promise<ListRecordsPage> {
    return this.#call("listRecords", [diskId, options], () => this.inner.listRecords(diskId, options));
  }

  listShards(diskId: string, query: ShardListQuery): Promise<ShardListPage> {
    return this.#call("listShards", [diskId, query], () => this.inner.listShards(diskId, query));
  }

  listRecordsByPlacement(diskId: string, query: PlacementQuery): Promise<PlacementPage> {
    return this.#call("listRecordsByPlacement", [diskId, query], () => this.inner.listRecordsByPlacement(diskId, query));
  }

  putBucket(bucket: BucketRecord): Promise<void> {
    return this.#call("putBucket", [bucket], () => this.inner.putBucket(bucket));
  }

  getBucket(name: string): Promise<BucketRecord | undefined> {
    return this.#call("getBucket", [name], () => this.inner.getBucket(name));
  }

  deleteBucket(name: string): Promise<boolean> {
    return this.#call("deleteBucket", [name], () => this.inner.deleteBucket(name));
  }

  listBuckets(): Promise<BucketRecord[]> {
    return this.#call("listBuckets", [], () => this.inner.listBuckets());
  }

  health(): Promise<NodeHealth> {
    return this.#call("health", [], () => this.inner.health());
  }
}

function errorOf(fault: Fault, call: StorageCall): Error {
  return typeof fault.error === "function" ? fault.error(call) : fault.error;
}

/** Passes `pieces` pieces of `source` through, then throws `error`. */
async function* failingAfter(source: AsyncIterable<Buffer>, pieces: number, error: Error): AsyncGenerator<Buffer> {
  let passed = 0;
  for await (const piece of source) {
    if (passed === pieces) throw error;
    yield piece;
    passed += 1;
  }
  throw error;
}
