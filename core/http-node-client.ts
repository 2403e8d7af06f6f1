/**
 * A remote storage node as a `StorageNode`: the internal HTTP API (core/internal-api.ts) over
 * undici, one keep-alive connection pool per node, every request signed with the cluster
 * secret (core/internal-auth.ts). Shards stream both ways and are never buffered whole.
 *
 * Errors: the node's JSON error body becomes the same TesseraError it threw; a node that
 * cannot be reached or times out becomes ERR_NODE_UNAVAILABLE; a shard stream that breaks
 * after it started becomes ERR_SHARD_TRUNCATED (the node met a corrupt chunk and cut the
 * connection, or died). All of that is decided in `translateTransportError` and
 * `errorFromResponse` (its wire body through `errorFromWire`, which batch answers share),
 * nowhere else.
 */
import { Readable } from "node:stream";
import { Pool, type Dispatcher } from "undici";
import { assert } from "./assert.js";
import { readableChunks } from "./readable-chunks.js";
import { RecordChannelClient } from "./record-channel-client.js";
import { BATCH_ITEM_BYTES_MAX, RecordBatcher, getRecordsOp, putRecordOp, type BatchResultWire } from "./record-batch.js";
import { TesseraError, isTesseraError, requireArgument } from "./errors.js";
import { SHARD_HEADER_BYTES } from "./limits.js";
import {
  JSON_RESPONSE_BYTES_MAX,
  SHARD_FILE_BYTES_MAX,
  bucketFromWire,
  bucketListFromWire,
  bucketPath,
  flagFromWire,
  isErrorCode,
  leaseGrantFromWire,
  leasePath,
  listPageFromWire,
  nodeHealthFromWire,
  placementPageFromWire,
  shardListPageFromWire,
  shardListPath,
  recordListFromWire,
  recordToWire,
  recordWireJson,
  recordsPath,
  shardPath,
  ROUTES,
} from "./internal-api.js";
import { EMPTY_BODY_SHA256, UNSIGNED_STREAMING, sha256Hex, signRequest, type ClusterSecret } from "./internal-auth.js";
import {
  NAME_ID_PATTERN,
  type BucketRecord,
  type HexId,
  type LeaseFence,
  type LeaseGrant,
  type LeaseRequest,
  type ListRecordsOptions,
  type ListRecordsPage,
  type NodeHealth,
  type ObjectRecord,
  type PlacementPage,
  type PlacementQuery,
  type ShardListPage,
  type ShardListQuery,
  type PutRecordReply,
  type ReadShardOptions,
  type ShardId,
  type StorageNode,
  type StripeRange,
} from "./storage-api.js";

/** TCP connect to a node: instant on a LAN; 5 s rides out two SYN retransmits before "unavailable". */
export const CONNECT_TIMEOUT_MS = 5_000;
/**
 * From the request's end (or the last body write the node was slow to take) to the response
 * headers. Covers a shard's fsync and rename on a busy disk; longer means a hung node holds a
 * gateway request that long before it reads parity instead.
 */
export const HEADERS_TIMEOUT_MS = 30_000;
/** Silence between two pieces of a response body while we are reading it (not while we pause). */
export const BODY_IDLE_TIMEOUT_MS = 30_000;
/**
 * Idle keep-alive connections close after this. Must stay below the node's keep-alive
 * (storage-node/server.ts), or we could send on a socket the node is closing.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 30_000;
/** Open connections to one node: one per in-flight request (no pipelining with streamed bodies). */
export const CONNECTIONS_PER_NODE_MAX = 128;
/** Bytes of an error body read at most: errors are small JSON; anything bigger is not ours. */
const ERROR_BODY_BYTES_MAX = 64 * 1024;
/** Characters of a non-JSON error body quoted in the error message. */
const ERROR_TEXT_CHARS_SHOWN = 200;

/**
 * How long a refused connection (ECONNREFUSED: nothing listens on the node's port) marks the
 * node as refusing (StorageNode.refusing), unless an exchange with it succeeds first. Reads
 * ask such a node last, so a node that stops costs GETs no failed attempt while the failure
 * detector takes its time (it calls a node suspect after 5 s of missed probes, to ride out a
 * slow answer); short, so a restarted node is read from again within two probe intervals
 * even with no healer probing it.
 */
export const REFUSED_HINT_MS = 4_000;

/** undici error codes that mean "the node is not reachable or stopped answering". */
const UNAVAILABLE_CODES = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_DESTROYED",
  "UND_ERR_INFO",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

export interface HttpNodeClientOptions {
  readonly nodeId: string;
  /** The node's base URL, e.g. http://127.0.0.1:9101 (an origin: no path). */
  readonly url: string;
  readonly secret: ClusterSecret;
  readonly connectionsMax?: number;
  readonly connectTimeoutMs?: number;
  readonly headersTimeoutMs?: number;
  readonly bodyIdleTimeoutMs?: number;
}

type RequestBody =
  | { readonly kind: "none" }
  /** `text`, when given, is the JSON already serialized (a batch body). */
  | { readonly kind: "json"; readonly value: unknown; readonly text?: string }
  | { readonly kind: "stream"; readonly source: CountedBody; readonly declaredBytes: number };

/**
 * The caller's shard body on its way to undici, held to exactly `declaredBytes` with the same
 * codes a local node uses (ERR_SHARD_TOO_LONG, ERR_SHARD_TRUNCATED). The piece that completes
 * the declared length is held back until the source has ended: a node that has received every
 * declared byte may commit, so it must never get them from a body that then runs on. A failure
 * of the source (or of these checks) is remembered so it is reported instead of undici's error.
 */
class CountedBody {
  failure: { error: unknown } | undefined;
  readonly #source: AsyncIterable<Buffer>;
  readonly #declaredBytes: number;

  constructor(source: AsyncIterable<Buffer>, declaredBytes: number) {
    this.#source = source;
    this.#declaredBytes = declaredBytes;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    const iterator = this.#source[Symbol.asyncIterator]();
    let sentBytes = 0;
    let ended = false;
    try {
      for (;;) {
        const next = await this.#pull(iterator);
        if (next.done === true) break;
        const piece = next.value;
        if (sentBytes + piece.length > this.#declaredBytes) throw this.#fail(tooLong(this.#declaredBytes, sentBytes + piece.length));
        if (sentBytes + piece.length === this.#declaredBytes && (await this.#pull(iterator)).done !== true) {
          throw this.#fail(tooLong(this.#declaredBytes, sentBytes + piece.length + 1));
        }
        sentBytes += piece.length;
        // undici may throw into this yield (it gave up on the request): not the source's fault.
        yield piece;
      }
      ended = true;
      if (sentBytes < this.#declaredBytes) throw this.#fail(truncated(this.#declaredBytes, sentBytes));
    } finally {
      if (!ended) await iterator.return?.();
    }
  }

  async #pull(iterator: AsyncIterator<Buffer>): Promise<IteratorResult<Buffer>> {
    try {
      return await iterator.next();
    } catch (error) {
      throw this.#fail(error);
    }
  }

  #fail(error: unknown): unknown {
    this.failure ??= { error };
    return error;
  }
}

function tooLong(declaredBytes: number, receivedBytes: number): TesseraError {
  return new TesseraError("ERR_SHARD_TOO_LONG", `shard body: more than the ${declaredBytes} bytes declared`, { expectedBytes: declaredBytes, receivedBytes });
}

function truncated(declaredBytes: number, receivedBytes: number): TesseraError {
  return new TesseraError("ERR_SHARD_TRUNCATED", `shard body: ended after ${receivedBytes} of ${declaredBytes} bytes declared`, { expectedBytes: declaredBytes, receivedBytes });
}

function errorCodeOf(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") return error.code;
  return undefined;
}

function positiveOption(value: number | undefined, fallback: number, name: string): number {
  const chosen = value ?? fallback;
  requireArgument(Number.isSafeInteger(chosen) && chosen > 0, name, `must be a positive integer, got ${chosen}`);
  return chosen;
}

function parseOrigin(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TesseraError("ERR_INVALID_ARGUMENT", `url: not a URL: ${url}`, { option: "url" });
  }
  requireArgument(parsed.protocol === "http:" || parsed.protocol === "https:", "url", `must be http: or https:, got ${parsed.protocol}`);
  requireArgument(parsed.pathname === "/" && parsed.search === "" && parsed.hash === "", "url", `must be an origin without a path, got ${url}`);
  return parsed.origin;
}

export class HttpNodeClient implements StorageNode {
  readonly nodeId: string;
  readonly url: string;
  readonly #pool: Pool;
  readonly #secret: ClusterSecret;
  /** When a connection to the node was last refused, until an exchange succeeds (refusing()). */
  #refusedAt: number | undefined;
  /** Record reads and writes to this node, sent in batches under load (core/record-batch.ts). */
  readonly #batcher = new RecordBatcher((body, count) => this.#sendBatch(body, count));
  /** The connection batches travel on (core/record-channel.ts), HTTP if the node predates it. */
  readonly #channel: RecordChannelClient;

  constructor(options: HttpNodeClientOptions) {
    requireArgument(NAME_ID_PATTERN.test(options.nodeId), "nodeId", `must match ${NAME_ID_PATTERN}, got ${JSON.stringify(options.nodeId)}`);
    this.nodeId = options.nodeId;
    this.url = parseOrigin(options.url);
    this.#secret = options.secret;
    this.#pool = new Pool(this.url, {
      connections: positiveOption(options.connectionsMax, CONNECTIONS_PER_NODE_MAX, "connectionsMax"),
      connectTimeout: positiveOption(options.connectTimeoutMs, CONNECT_TIMEOUT_MS, "connectTimeoutMs"),
      headersTimeout: positiveOption(options.headersTimeoutMs, HEADERS_TIMEOUT_MS, "headersTimeoutMs"),
      bodyTimeout: positiveOption(options.bodyIdleTimeoutMs, BODY_IDLE_TIMEOUT_MS, "bodyIdleTimeoutMs"),
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      strictContentLength: true,
    });
    this.#channel = new RecordChannelClient({
      nodeId: this.nodeId,
      url: this.url,
      secret: this.#secret,
      connectTimeoutMs: positiveOption(options.connectTimeoutMs, CONNECT_TIMEOUT_MS, "connectTimeoutMs"),
      answerTimeoutMs: positiveOption(options.headersTimeoutMs, HEADERS_TIMEOUT_MS, "headersTimeoutMs"),
      idleTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
      refusal: (status, text) => errorFromStatus(this.nodeId, status, text, `GET ${ROUTES.recordChannel}`),
      onRefused: () => (this.#refusedAt = Date.now()),
      onAnswered: () => (this.#refusedAt = undefined),
    });
  }

  refusing(): boolean {
    return this.#refusedAt !== undefined && Date.now() - this.#refusedAt < REFUSED_HINT_MS;
  }

  /** Closes the pool's connections once in-flight requests finish, and the record channel. */
  async close(): Promise<void> {
    this.#channel.close();
    await this.#pool.close();
  }

  // --- Shards ---------------------------------------------------------------------------

  async writeShard(diskId: string, shard: ShardId, body: AsyncIterable<Buffer>, declaredBytes: number): Promise<void> {
    requireArgument(
      Number.isSafeInteger(declaredBytes) && declaredBytes >= SHARD_HEADER_BYTES && declaredBytes <= SHARD_FILE_BYTES_MAX,
      "declaredBytes",
      `must be an integer in ${SHARD_HEADER_BYTES}..${SHARD_FILE_BYTES_MAX}, got ${declaredBytes}`,
    );
    const response = await this.#request("PUT", shardPath(diskId, shard), { kind: "stream", source: new CountedBody(body, declaredBytes), declaredBytes });
    await response.body.dump();
  }

  async *readShard(diskId: string, shard: ShardId, range?: StripeRange, options?: ReadShardOptions): AsyncGenerator<Buffer> {
    const response = await this.#request("GET", shardPath(diskId, shard, range), { kind: "none" }, options?.signal);
    let receivedBytes = 0;
    try {
      for await (const piece of readableChunks(response.body)) {
        receivedBytes += piece.length;
        yield piece;
      }
    } catch (error) {
      if (options?.signal?.aborted === true) throw error; // the caller gave up; not the node's fault
      throw this.#brokenStream(error, { diskId, receivedBytes });
    }
  }

  async deleteShard(diskId: string, shard: ShardId): Promise<boolean> {
    return flagFromWire(await this.#json("DELETE", shardPath(diskId, shard), { kind: "none" }), "deleted");
  }

  // --- Records --------------------------------------------------------------------------

  async putRecord(diskId: string, record: ObjectRecord, fence?: LeaseFence): Promise<PutRecordReply> {
    let body: unknown;
    const op = fence === undefined ? putRecordOp(diskId, recordWireJson(record)) : undefined;
    if (op !== undefined && op.length <= BATCH_ITEM_BYTES_MAX) body = await this.#batched(op);
    else {
      const wire = recordToWire(record);
      body = await this.#json("PUT", recordsPath(diskId), { kind: "json", value: fence === undefined ? { record: wire } : { record: wire, fence } });
    }
    const result = typeof body === "object" && body !== null && "result" in body ? body.result : undefined;
    if (result !== "stored" && result !== "unchanged" && result !== "superseded") throw this.#badResponse("putRecord: result is not stored/unchanged/superseded");
    const olderVersions = typeof body === "object" && body !== null && "olderVersions" in body ? body.olderVersions : undefined;
    if (typeof olderVersions !== "number" || !Number.isSafeInteger(olderVersions) || olderVersions < 0) throw this.#badResponse("putRecord: olderVersions is not a count");
    return { result, olderVersions };
  }

  async getRecords(diskId: string, bucket: string, key: string): Promise<ObjectRecord[]> {
    return recordListFromWire(await this.#batched(getRecordsOp(diskId, bucket, key)), "records");
  }

  /** One record operation through the batcher: its own result, or its own error. */
  async #batched(op: string): Promise<unknown> {
    const result = await this.#batcher.submit(op);
    if ("ok" in result) return result.ok;
    const { code, message, details } = result.error;
    throw errorFromWire(result.error, { nodeId: this.nodeId }) ?? new TesseraError("ERR_NODE_UNAVAILABLE", `node ${this.nodeId}: batched operation failed: ${code}: ${message}`, { ...details, nodeId: this.nodeId });
  }

  async #sendBatch(body: string, count: number): Promise<readonly BatchResultWire[]> {
    const answer = (await this.#channelBatch(body)) ?? (await this.#json("POST", ROUTES.recordBatch, { kind: "json", value: undefined, text: body }));
    const results = typeof answer === "object" && answer !== null && "results" in answer && Array.isArray(answer.results) ? (answer.results as unknown[]) : undefined;
    if (results === undefined || results.length !== count) throw this.#badResponse(`batch: expected ${count} results`);
    return results.map((result, index) => {
      if (typeof result === "object" && result !== null && "ok" in result) return { ok: result.ok };
      const error = typeof result === "object" && result !== null && "error" in result ? wireErrorOf(result.error) : undefined;
      if (error === undefined || typeof error.code !== "string") throw this.#badResponse(`batch: result ${index} is neither ok nor an error`);
      return { error: { code: error.code, message: error.message, details: error.details } };
    });
  }

  /**
   * A batch over the record channel: the node's answer parsed, undefined if the node does not
   * serve channels. A whole-batch refusal ({"error": ...}) throws it, as its HTTP status would.
   */
  async #channelBatch(body: string): Promise<unknown> {
    const payload = await this.#channel.exchange(Buffer.from(body, "utf8"));
    if (payload === undefined) return undefined;
    let answer: unknown;
    try {
      answer = JSON.parse(payload.toString("utf8"));
    } catch {
      throw this.#badResponse("record channel: an answer is not JSON");
    }
    if (typeof answer === "object" && answer !== null && "error" in answer) {
      throw errorFromWire(wireErrorOf(answer.error), { nodeId: this.nodeId }) ?? this.#badResponse("record channel: an error answer without a known code");
    }
    return answer;
  }

  async deleteRecord(diskId: string, bucket: string, key: string, versionId: HexId): Promise<boolean> {
    const body = await this.#json("POST", recordsPath(diskId, "delete"), { kind: "json", value: { bucket, key, versionId } });
    return flagFromWire(body, "deleted");
  }

  async listRecords(diskId: string, options: ListRecordsOptions): Promise<ListRecordsPage> {
    return listPageFromWire(await this.#json("POST", recordsPath(diskId, "list"), { kind: "json", value: options }));
  }

  async listShards(diskId: string, query: ShardListQuery): Promise<ShardListPage> {
    return shardListPageFromWire(await this.#json("POST", shardListPath(diskId), { kind: "json", value: query }));
  }

  async listRecordsByPlacement(diskId: string, query: PlacementQuery): Promise<PlacementPage> {
    return placementPageFromWire(await this.#json("POST", recordsPath(diskId, "by-placement"), { kind: "json", value: query }));
  }

  // --- Leases (conditional writes) ------------------------------------------------------------

  async acquireLease(diskId: string, request: LeaseRequest): Promise<LeaseGrant> {
    return leaseGrantFromWire(await this.#json("POST", leasePath(diskId, "acquire"), { kind: "json", value: request }));
  }

  async releaseLease(diskId: string, bucket: string, key: string, fence: LeaseFence): Promise<boolean> {
    const body = await this.#json("POST", leasePath(diskId, "release"), { kind: "json", value: { bucket, key, holder: fence.holder, token: fence.token } });
    return flagFromWire(body, "released");
  }



  // --- Buckets and health ---------------------------------------------------------------------

  async putBucket(bucket: BucketRecord): Promise<void> {
    const response = await this.#request("PUT", bucketPath(bucket.name), { kind: "json", value: { created: bucket.created } });
    await response.body.dump();
  }

  async getBucket(name: string): Promise<BucketRecord | undefined> {
    const body = await this.#json("GET", bucketPath(name), { kind: "none" });
    const bucket = typeof body === "object" && body !== null && "bucket" in body ? body.bucket : undefined;
    return bucket === null || bucket === undefined ? undefined : bucketFromWire(bucket);
  }

  async deleteBucket(name: string): Promise<boolean> {
    return flagFromWire(await this.#json("DELETE", bucketPath(name), { kind: "none" }), "deleted");
  }

  async listBuckets(): Promise<BucketRecord[]> {
    return bucketListFromWire(await this.#json("GET", bucketPath(), { kind: "none" }));
  }

  async health(): Promise<NodeHealth> {
    return nodeHealthFromWire(await this.#json("GET", ROUTES.health, { kind: "none" }));
  }

  /** The node's Prometheus metrics, as text (signed like every other request). */
  async metrics(): Promise<string> {
    const response = await this.#request("GET", ROUTES.metrics, { kind: "none" });
    return (await readBounded(response.body, JSON_RESPONSE_BYTES_MAX)).toString("utf8");
  }

  // --- Transport --------------------------------------------------------------------------------

  async #json(method: Dispatcher.HttpMethod, path: string, body: RequestBody): Promise<unknown> {
    const response = await this.#request(method, path, body);
    let bytes: Buffer;
    try {
      bytes = await readBounded(response.body, JSON_RESPONSE_BYTES_MAX);
    } catch (error) {
      throw this.#translateTransportError(error, undefined);
    }
    try {
      return JSON.parse(bytes.toString("utf8")) as unknown;
    } catch {
      throw this.#badResponse(`${method} ${path}: response is not JSON`);
    }
  }

  /** Sends one signed request; returns the response if it is a success, else throws its error. */
  async #request(method: Dispatcher.HttpMethod, path: string, body: RequestBody, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    const { headers, payload } = this.#prepare(method, path, body);
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#pool.request({ method, path, headers, body: payload, signal: signal ?? null });
    } catch (error) {
      if (signal?.aborted === true) throw error; // the caller gave up; not the node's fault
      if (errorCodeOf(error) === "ECONNREFUSED") this.#refusedAt = Date.now();
      throw this.#translateTransportError(error, body.kind === "stream" ? body.source : undefined);
    }
    // Any answer, even a refusal of the request, means the node listens again.
    this.#refusedAt = undefined;
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    throw await this.#errorFromResponse(response, `${method} ${path}`);
  }

  #prepare(method: string, path: string, body: RequestBody): { headers: Record<string, string>; payload: Readable | Buffer | null } {
    assert(path.startsWith("/v1/") || path === ROUTES.metrics, "requests go to internal API paths only");
    if (body.kind === "none") {
      return { headers: signRequest(this.#secret, { nodeId: this.nodeId, method, pathAndQuery: path, contentSha256: EMPTY_BODY_SHA256 }), payload: null };
    }
    if (body.kind === "json") {
      const json = Buffer.from(body.text ?? JSON.stringify(body.value), "utf8");
      const signed = signRequest(this.#secret, { nodeId: this.nodeId, method, pathAndQuery: path, contentSha256: sha256Hex(json) });
      return { headers: { ...signed, "content-type": "application/json" }, payload: json };
    }
    const contentLength = String(body.declaredBytes);
    const signed = signRequest(this.#secret, { nodeId: this.nodeId, method, pathAndQuery: path, contentSha256: UNSIGNED_STREAMING, contentLength });
    const headers = { ...signed, "content-type": "application/octet-stream", "content-length": contentLength };
    return { headers, payload: Readable.from(body.source, { objectMode: false }) };
  }

  /** The one place a failed exchange becomes a TesseraError. */
  #translateTransportError(error: unknown, source: CountedBody | undefined): Error {
    if (source?.failure !== undefined) {
      const cause = source.failure.error;
      return cause instanceof Error ? cause : new Error(String(cause));
    }
    if (isTesseraError(error)) return error;
    const code = errorCodeOf(error);
    if (code === "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH") {
      return new TesseraError("ERR_INCOMPLETE_BODY", `node ${this.nodeId}: the shard body did not match its declared length`, { nodeId: this.nodeId }, { cause: error });
    }
    // Anything else undici throws is also a failed exchange with this node; the known codes
    // are listed so a reader sees what "unavailable" covers, and go into the details.
    const reason = error instanceof Error ? error.message : String(error);
    return new TesseraError("ERR_NODE_UNAVAILABLE", `node ${this.nodeId} (${this.url}): ${reason}`, { nodeId: this.nodeId, url: this.url, cause: code, known: code !== undefined && UNAVAILABLE_CODES.has(code) }, { cause: error });
  }

  /** A shard stream that broke after its headers arrived. */
  #brokenStream(error: unknown, where: { diskId: string; receivedBytes: number }): TesseraError {
    const code = errorCodeOf(error);
    if (code === "UND_ERR_BODY_TIMEOUT") return this.#translateTransportError(error, undefined) as TesseraError;
    const reason = error instanceof Error ? error.message : String(error);
    return new TesseraError(
      "ERR_SHARD_TRUNCATED",
      `node ${this.nodeId} disk ${where.diskId}: shard stream broke after ${where.receivedBytes} bytes (${reason})`,
      { nodeId: this.nodeId, diskId: where.diskId, receivedBytes: where.receivedBytes, cause: code },
      { cause: error },
    );
  }

  async #errorFromResponse(response: Dispatcher.ResponseData, what: string): Promise<TesseraError> {
    let text = "";
    try {
      text = (await readBounded(response.body, ERROR_BODY_BYTES_MAX)).toString("utf8");
    } catch {
      // The status alone still says what happened.
    }
    return errorFromStatus(this.nodeId, response.statusCode, text, what);
  }

  #badResponse(problem: string): TesseraError {
    return new TesseraError("ERR_NODE_UNAVAILABLE", `node ${this.nodeId}: bad response: ${problem}`, { nodeId: this.nodeId });
  }
}

/** A node's refusal (status and body text) as the TesseraError it stands for. */
function errorFromStatus(nodeId: string, status: number, text: string, what: string): TesseraError {
  const wire = parseWireError(text);
  const known = errorFromWire(wire, { nodeId, status });
  if (known !== undefined) return known;
  const details = { ...(wire?.details ?? {}), nodeId, status };
  const shown = text.slice(0, ERROR_TEXT_CHARS_SHOWN);
  const message = `node ${nodeId}: ${what} answered HTTP ${status}: ${shown}`;
  if (status === 401) return new TesseraError("ERR_UNAUTHORIZED", message, details);
  if (status >= 500) return new TesseraError("ERR_NODE_UNAVAILABLE", message, details);
  return new TesseraError("ERR_INVALID_ARGUMENT", message, details);
}

/** A node's error (its code, message and details) as the TesseraError it threw, if the code is one of ours. */
function errorFromWire(wire: { code: unknown; message: string; details: Record<string, unknown> } | undefined, ours: Record<string, unknown>): TesseraError | undefined {
  return wire !== undefined && isErrorCode(wire.code) ? new TesseraError(wire.code, wire.message, { ...wire.details, ...ours }) : undefined;
}

function parseWireError(text: string): { code: unknown; message: string; details: Record<string, unknown> } | undefined {
  try {
    return wireErrorOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** A node's error body (already parsed), or undefined when it is not one. */
function wireErrorOf(value: unknown): { code: unknown; message: string; details: Record<string, unknown> } | undefined {
  if (typeof value !== "object" || value === null || !("code" in value)) return undefined;
  const message = "message" in value && typeof value.message === "string" ? value.message : "";
  const details = "details" in value && typeof value.details === "object" && value.details !== null ? (value.details as Record<string, unknown>) : {};
  return { code: value.code, message, details };
}

/** Reads a whole response body, refusing more than `limit` bytes. */
async function readBounded(body: Dispatcher.ResponseData["body"], limit: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let total = 0;
  for await (const piece of body as AsyncIterable<Buffer>) {
    total += piece.length;
    if (total > limit) {
      body.destroy();
      throw new TesseraError("ERR_NODE_UNAVAILABLE", `response body over ${limit} bytes`, { limit });
    }
    pieces.push(piece);
  }
  return Buffer.concat(pieces, total);
}
