/**
 * Record reads and writes to one node, sent together: while a node is busy with earlier
 * batches, the record operations a gateway issues meanwhile wait and then go as one request
 * (POST ROUTES.recordBatch). At low load every operation still leaves at once, alone; under
 * load, 16 small GETs in flight cost each node about one HTTP exchange instead of sixteen.
 * On this 2-core machine an internal HTTP exchange (syscalls on both sides, parsing, the
 * signature) cost more CPU than everything else a 4 KiB GET does (issue 7's profiles).
 *
 * The node runs a batch's operations concurrently and answers each on its own: one failing
 * (a failed disk, a bad key) fails only its caller. Only getRecords and unfenced putRecord
 * are batched; fenced writes, leases and shards keep their own requests.
 */
import { requireArgument, TesseraError } from "./errors.js";

/**
 * Operations in one batch at most: enough to absorb a gateway's usual concurrency (16 clients
 * × one record operation per node) in one request, small enough that one batch's work on the
 * node stays a few milliseconds.
 */
export const BATCH_OPS_MAX = 64;
/**
 * Serialized operations per batch at most. Far below the node's JSON body limit
 * (RECORD_BODY_BYTES_MAX), so a batch of inline records never nears it.
 */
export const BATCH_BODY_BYTES_MAX = 1024 * 1024;
/**
 * An operation bigger than this (a multipart record listing thousands of parts) goes alone
 * through its own route: it would crowd a batch and gains nothing from one.
 */
export const BATCH_ITEM_BYTES_MAX = 256 * 1024;
/**
 * Batches in flight to one node at once. With one, every operation that arrives while a batch
 * is out leaves in the next batch, so under load each node sees the fewest exchanges; a record
 * write waits for at most one earlier batch's commit. Measured back to back (issue 7, 4 KiB
 * objects ×16, two runs each): one in flight gave 561–597 GET/s and 321–347 PUT/s, two gave
 * 474–476 and 264–274, with 20% less node CPU per operation. At low load nothing waits: an
 * operation with no batch out leaves at once, alone.
 */
export const BATCHES_IN_FLIGHT_MAX = 1;
/**
 * Operations waiting for one node at most. A hung node holds its batches in flight until the
 * client's headers timeout (30 s) and everything for it queues meanwhile; past this many the
 * node is answered unavailable at once (callers read or write other disks instead), so the
 * queue of a hung node cannot grow without bound. 64 full batches: far above any healthy
 * backlog (a healthy node drains a batch in milliseconds).
 */
export const BATCH_QUEUE_OPS_MAX = 64 * BATCH_OPS_MAX;

export type BatchOp =
  | { readonly op: "getRecords"; readonly diskId: string; readonly bucket: string; readonly key: string }
  | { readonly op: "putRecord"; readonly diskId: string; readonly record: unknown };

/** One operation's answer: its value, or the error the node would have sent for it alone. */
export type BatchResultWire = { readonly ok: unknown } | { readonly error: { readonly code: string; readonly message: string; readonly details: Record<string, unknown> } };

function invalid(problem: string): TesseraError {
  return new TesseraError("ERR_INVALID_ARGUMENT", `batch: ${problem}`, { field: "body" });
}

/** The operations of a batch request body; the record of a put is left for recordFromWire. */
export function batchOpsFromWire(value: unknown): BatchOp[] {
  if (typeof value !== "object" || value === null || !("ops" in value) || !Array.isArray(value.ops)) throw invalid("must be an object with an ops list");
  const ops: unknown[] = value.ops;
  if (ops.length === 0 || ops.length > BATCH_OPS_MAX) throw invalid(`ops must hold 1..${BATCH_OPS_MAX} operations, got ${ops.length}`);
  return ops.map((op, index): BatchOp => {
    if (typeof op !== "object" || op === null || !("op" in op) || !("diskId" in op) || typeof op.diskId !== "string") throw invalid(`ops[${index}] must name an op and a diskId`);
    if (op.op === "getRecords" && "bucket" in op && "key" in op && typeof op.bucket === "string" && typeof op.key === "string") {
      return { op: "getRecords", diskId: op.diskId, bucket: op.bucket, key: op.key };
    }
    if (op.op === "putRecord" && "record" in op) return { op: "putRecord", diskId: op.diskId, record: op.record };
    throw invalid(`ops[${index}]: op must be getRecords (with bucket and key) or putRecord (with a record)`);
  });
}

interface Waiting {
  readonly json: string;
  readonly resolve: (result: BatchResultWire) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Sends the body `{"ops":[...]}` and returns the node's results, one per operation in order;
 * throws when the exchange itself failed (every operation of the batch then fails with it).
 */
export type BatchSender = (body: string, count: number) => Promise<readonly BatchResultWire[]>;

/** The client side: queues operations and sends them in batches (see the file comment). */
export class RecordBatcher {
  readonly #send: BatchSender;
  readonly #queue: Waiting[] = [];
  #inFlight = 0;

  constructor(send: BatchSender) {
    this.#send = send;
  }

  /** Queues one serialized operation (JSON of a BatchOp); resolves with its own result. */
  submit(json: string): Promise<BatchResultWire> {
    requireArgument(json.length <= BATCH_ITEM_BYTES_MAX, "json", `must be at most ${BATCH_ITEM_BYTES_MAX} bytes: send bigger operations alone`);
    if (this.#queue.length >= BATCH_QUEUE_OPS_MAX) {
      return Promise.reject(new TesseraError("ERR_NODE_UNAVAILABLE", `${this.#queue.length} record operations already wait for this node (its batches are not coming back)`, { queued: this.#queue.length }));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ json, resolve, reject });
      if (this.#inFlight < BATCHES_IN_FLIGHT_MAX) this.#flush();
    });
  }

  #flush(): void {
    const batch: Waiting[] = [];
    let bytes = 0;
    while (this.#queue.length > 0 && batch.length < BATCH_OPS_MAX) {
      const next = this.#queue[0] as Waiting;
      if (batch.length > 0 && bytes + next.json.length + 1 > BATCH_BODY_BYTES_MAX) break;
      batch.push(next);
      this.#queue.shift();
      bytes += next.json.length + 1;
    }
    if (batch.length === 0) return;
    this.#inFlight++;
    const body = `{"ops":[${batch.map((waiting) => waiting.json).join(",")}]}`;
    void this.#send(body, batch.length).then(
      (results) => {
        for (const [index, waiting] of batch.entries()) {
          const result = results[index];
          if (result === undefined) waiting.reject(new TesseraError("ERR_NODE_UNAVAILABLE", `batch: the node answered ${results.length} of ${batch.length} operations`));
          else waiting.resolve(result);
        }
      },
      (error: unknown) => {
        for (const waiting of batch) waiting.reject(error);
      },
    ).finally(() => {
      this.#inFlight--;
      if (this.#queue.length > 0) this.#flush();
    });
  }
}

/** Typed helpers for the two batched operations' JSON (one place that spells the wire form). */
export function getRecordsOp(diskId: string, bucket: string, key: string): string {
  return JSON.stringify({ op: "getRecords", diskId, bucket, key });
}

/** `recordJson` is the record's wire JSON text (recordWireJson), put in as it is. */
export function putRecordOp(diskId: string, recordJson: string): string {
  return `{"op":"putRecord","diskId":${JSON.stringify(diskId)},"record":${recordJson}}`;
}
