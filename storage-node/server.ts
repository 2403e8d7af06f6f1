/**
 * The storage node's internal HTTP API (routes in core/internal-api.ts) over any
 * StorageNode — in production a LocalNode. Order of work for every request: check the
 * signature (401 before anything is read or touched), validate every path id, then call the
 * node. Shard bodies stream straight into `writeShard` and out of `readShard`; JSON bodies
 * are bounded by RECORD_BODY_BYTES_MAX and held to their signed hash.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { AssertionError, assert } from "../core/assert.js";
import { TesseraError, isTesseraError } from "../core/errors.js";
import {
  HTTP_STATUS_BY_CODE,
  RECORD_BODY_BYTES_MAX,
  ROUTES,
  SHARD_FILE_BYTES_MAX,
  bucketCreatedFromWire,
  leaseReleaseFromWire,
  leaseRequestFromWire,
  listOptionsFromWire,
  parseBucketName,
  parseDiskId,
  parseShardParams,
  parseStripeRange,
  placementQueryFromWire,
  shardListQueryFromWire,
  recordFromWire,
  recordPutFromWire,
  recordKeyFromWire,
  recordToWire,
  recordVersionFromWire,
  type ShardParams,
  type WireError,
} from "../core/internal-api.js";
import { EMPTY_BODY_SHA256, UNSIGNED_STREAMING, checkBodyHash, type RequestVerifier } from "../core/internal-auth.js";
import { batchOpsFromWire, type BatchOp, type BatchResultWire } from "../core/record-batch.js";
import type { ObjectRecord, StorageNode } from "../core/storage-api.js";
import { NodeMetrics } from "./metrics.js";
import { RecordChannelServer } from "./record-channel-server.js";
import { releaseShardPiece } from "./shard-files.js";

/** Keep-alive of idle connections; above the client's KEEP_ALIVE_TIMEOUT_MS so the client closes first. */
export const SERVER_KEEP_ALIVE_MS = 65_000;
/** Time to receive a request's headers: bounds slow-header (slowloris) connections. */
export const SERVER_HEADERS_TIMEOUT_MS = 20_000;
/**
 * A socket with no traffic either way for this long is closed: a stalled upload frees its
 * temporary file. No whole-request limit: a large shard legitimately takes long.
 */
export const SOCKET_IDLE_TIMEOUT_MS = 60_000;
/**
 * After refusing an upload early, its unread body is drained (so the refusal is not lost to a
 * connection reset) for at most this long after the response went out; then the socket is cut.
 */
export const UNREAD_BODY_LINGER_MS = 2_000;
/** On shutdown, in-flight requests get this long to finish before their connections are cut. */
export const SHUTDOWN_DRAIN_MS = 3_000;
/** After cutting connections, aborted writes get this long to remove their temporary files. */
export const SHUTDOWN_ABORT_MS = 1_500;

/**
 * The node a server serves (LocalNode): the storage interface, plus record reads as each
 * stored record's wire JSON text, which record batches pass on without parsing.
 */
export type ServedNode = StorageNode & {
  getRecordsJson(diskId: string, bucket: string, key: string): Promise<string[]>;
};

/** What a route's request body is, checked against the signed content hash. */
type BodyKind = "none" | "json" | "stream";

declare module "fastify" {
  interface FastifyContextConfig {
    body?: BodyKind;
  }
}

export interface StorageServerOptions {
  readonly node: ServedNode;
  readonly verifier: RequestVerifier;
  readonly logger: Logger;
  /** Called on a broken invariant (a bug): the process should log and exit. */
  readonly onFatal: (error: Error) => void;
}

type StripeQuery = { first?: string; count?: string };

/** Maps any error to its status and JSON body; TesseraErrors through the one code table. */
function toWireError(error: unknown): { status: number; body: WireError } {
  if (isTesseraError(error)) {
    return { status: HTTP_STATUS_BY_CODE[error.code], body: { code: error.code, message: error.message, details: { ...error.details } } };
  }
  const statusCode = typeof error === "object" && error !== null && "statusCode" in error ? error.statusCode : undefined;
  const message = error instanceof Error ? error.message : String(error);
  // Fastify's own refusals (body too large, bad content type, ...) are the client's fault.
  if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) {
    const fastifyCode = typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
    const shown = fastifyCode === "FST_ERR_CTP_BODY_TOO_LARGE" ? `body: over the ${RECORD_BODY_BYTES_MAX}-byte limit` : message;
    return { status: statusCode, body: { code: "ERR_INVALID_ARGUMENT", message: shown, details: { fastifyCode } } };
  }
  return { status: 500, body: { code: "ERR_INTERNAL", message, details: {} } };
}

function invalidBody(problem: string): TesseraError {
  return new TesseraError("ERR_INVALID_ARGUMENT", `body: ${problem}`, { field: "body" });
}

function unauthorized(reason: string): TesseraError {
  return new TesseraError("ERR_UNAUTHORIZED", `internal request refused: ${reason}`, { reason });
}

/** Content-Length of a shard PUT: required, decimal, within SHARD_FILE_BYTES_MAX. */
function declaredShardBytes(request: FastifyRequest): number {
  if (request.headers["transfer-encoding"] !== undefined) {
    throw new TesseraError("ERR_INVALID_ARGUMENT", "shard body: chunked transfer encoding is refused; send Content-Length", { field: "content-length" });
  }
  const header = request.headers["content-length"];
  if (header === undefined || !/^[0-9]{1,16}$/.test(header)) {
    throw new TesseraError("ERR_INVALID_ARGUMENT", "shard body: a decimal Content-Length is required", { field: "content-length" });
  }
  const declared = Number(header);
  if (declared > SHARD_FILE_BYTES_MAX) {
    throw new TesseraError("ERR_SHARD_TOO_LONG", `shard body: Content-Length ${declared} is over the largest shard file (${SHARD_FILE_BYTES_MAX} bytes)`, {
      declaredBytes: declared,
      limit: SHARD_FILE_BYTES_MAX,
    });
  }
  return declared;
}

/** Body bytes queued before the request is paused: a few network reads (64 KiB each). */
const SHARD_BODY_QUEUED_BYTES_MAX = 256 * 1024;

/**
 * The request body as the node's writeShard reads it: each piece as node:http delivered it
 * (never joined), the request paused while SHARD_BODY_QUEUED_BYTES_MAX wait. One plain
 * iterator instead of stacked async generators: per 64 KiB piece, each generator layer cost
 * a promise round trip. A connection lost mid-body, or an end short of Content-Length, is
 * ERR_INCOMPLETE_BODY. The socket stays open if the node stops reading early (return() does
 * not destroy it), so the error response can still reach the client.
 */
class ShardBody implements AsyncIterableIterator<Buffer> {
  readonly #raw: IncomingMessage;
  readonly #declaredBytes: number;
  readonly #metrics: NodeMetrics;
  readonly #queue: Buffer[] = [];
  #queueHead = 0;
  #queuedBytes = 0;
  #receivedBytes = 0;
  #counted = 0;
  #ended = false;
  #failure: { error: unknown } | undefined;
  #finished = false;
  #waiter: { resolve: (result: IteratorResult<Buffer>) => void; reject: (error: unknown) => void } | undefined;

  constructor(raw: IncomingMessage, declaredBytes: number, metrics: NodeMetrics) {
    this.#raw = raw;
    this.#declaredBytes = declaredBytes;
    this.#metrics = metrics;
    // A request cut before its handler ran never emits another event.
    if (raw.destroyed) this.#failure = { error: new Error("request closed before its end") };
    raw.on("data", this.#onData);
    raw.once("end", this.#onEnd);
    raw.once("error", this.#onError);
    raw.once("close", this.#onClose);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  readonly #onData = (piece: Buffer): void => {
    if (this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter.resolve(this.#take(piece));
      return;
    }
    this.#queue.push(piece);
    this.#queuedBytes += piece.length;
    if (this.#queuedBytes >= SHARD_BODY_QUEUED_BYTES_MAX) this.#raw.pause();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#settleWaiter();
  };

  readonly #onError = (error: unknown): void => {
    this.#failure ??= { error };
    this.#settleWaiter();
  };

  /** A request destroyed without an error (the client went away) must not end the body cleanly. */
  readonly #onClose = (): void => {
    if (!this.#ended) this.#failure ??= { error: new Error("request closed before its end") };
    this.#settleWaiter();
  };

  #settleWaiter(): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    this.#waiter = undefined;
    try {
      const result = this.#settled();
      assert(result !== undefined, "a waiter is settled only at the end or on a fault");
      waiter.resolve(result);
    } catch (error) {
      waiter.reject(error);
    }
  }

  #take(piece: Buffer): IteratorResult<Buffer> {
    this.#receivedBytes += piece.length;
    return { done: false, value: piece };
  }

  /** The outcome once nothing is queued: a fault, the end, or undefined (wait for more). */
  #settled(): IteratorResult<Buffer> | undefined {
    if (this.#failure !== undefined) {
      this.#finish();
      this.#metrics.shardStreamsBroken.inc({ direction: "in" });
      const { receivedBytes, declaredBytes } = { receivedBytes: this.#receivedBytes, declaredBytes: this.#declaredBytes };
      throw new TesseraError("ERR_INCOMPLETE_BODY", `shard body broke after ${receivedBytes} of ${declaredBytes} bytes (client went away)`, { receivedBytes, declaredBytes }, { cause: this.#failure.error });
    }
    if (!this.#ended) return undefined;
    this.#finish();
    // node:http ends a body at Content-Length and errors on an early close; this is the backstop.
    if (this.#receivedBytes !== this.#declaredBytes) {
      const { receivedBytes, declaredBytes } = { receivedBytes: this.#receivedBytes, declaredBytes: this.#declaredBytes };
      throw new TesseraError("ERR_INCOMPLETE_BODY", `shard body ended after ${receivedBytes} of ${declaredBytes} bytes`, { receivedBytes, declaredBytes });
    }
    return { done: true, value: undefined };
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.#finished) return Promise.resolve({ done: true, value: undefined });
    if (this.#queueHead < this.#queue.length) {
      const piece = this.#queue[this.#queueHead] as Buffer;
      this.#queue[this.#queueHead] = EMPTY_PIECE;
      this.#queueHead += 1;
      if (this.#queueHead === this.#queue.length) {
        this.#queue.length = 0;
        this.#queueHead = 0;
      }
      this.#queuedBytes -= piece.length;
      if (this.#queuedBytes < SHARD_BODY_QUEUED_BYTES_MAX && this.#raw.isPaused()) this.#raw.resume();
      return Promise.resolve(this.#take(piece));
    }
    try {
      const result = this.#settled();
      if (result !== undefined) return Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
    assert(this.#waiter === undefined, "one next() at a time");
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  /** Stops reading: the listeners go; the request is left as it is (the error reply drains it). */
  return(): Promise<IteratorResult<Buffer>> {
    this.#finish();
    return Promise.resolve({ done: true, value: undefined });
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#metrics.shardBytesReceived.inc(this.#receivedBytes - this.#counted);
    this.#counted = this.#receivedBytes;
    this.#queue.length = 0;
    this.#queueHead = 0;
    this.#queuedBytes = 0;
    const raw = this.#raw;
    raw.off("data", this.#onData);
    raw.off("end", this.#onEnd);
    raw.off("error", this.#onError);
    raw.off("close", this.#onClose);
    // Nobody listens any more: a late error must not become an uncaught 'error' event.
    if (this.#failure === undefined) raw.on("error", () => undefined);
    // Paused by us with pieces queued: the error reply's drain resumes it (#replyError).
  }
}

const EMPTY_PIECE = Buffer.alloc(0);

/** Resolves once `response` can take more (drain) or is gone (close). */
function writable(response: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}

/**
 * Writes a shard whose first piece is already read straight to the socket, piece by piece
 * with backpressure (no stream in between), and hands each piece back to the file reader's
 * buffer pool once the socket took it. A fault mid-stream cuts the connection: the headers
 * are out, so the client sees a broken stream, never a short one that looks complete.
 */
async function sendShard(response: ServerResponse, first: IteratorResult<Buffer>, rest: AsyncIterator<Buffer>, metrics: NodeMetrics, log: FastifyBaseLogger): Promise<void> {
  try {
    for (let next = first; next.done !== true; next = await rest.next()) {
      const piece = next.value;
      metrics.shardBytesSent.inc(piece.length);
      const more = response.write(piece, (error) => {
        if (error === undefined || error === null) releaseShardPiece(piece);
      });
      if (!more && !response.destroyed) await writable(response);
      if (response.destroyed) return; // the client went away; the finally closes the file
    }
    response.end();
  } catch (error) {
    metrics.shardStreamsBroken.inc({ direction: "out" });
    log.warn({ err: error }, "shard stream broke mid-response; connection cut");
    response.destroy();
  } finally {
    await rest.return?.();
  }
}

export class StorageServer {
  readonly app: FastifyInstance;
  readonly metrics: NodeMetrics;
  readonly #node: ServedNode;
  readonly #verifier: RequestVerifier;
  readonly #log: Logger;
  readonly #onFatal: (error: Error) => void;
  /** Signed content hashes of requests in flight, for the JSON parser to check. */
  readonly #signedHashes = new WeakMap<IncomingMessage, string>();
  /** Node operations in flight, awaited (bounded) on shutdown before the node closes. */
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Record batches on upgraded connections (core/record-channel.ts). */
  readonly #channels: RecordChannelServer;
  #closing: Promise<void> | undefined;

  constructor(options: StorageServerOptions) {
    this.#node = options.node;
    this.#verifier = options.verifier;
    this.#log = options.logger;
    this.#onFatal = options.onFatal;
    this.metrics = new NodeMetrics(options.node);
    this.app = Fastify({
      // pino's Logger is what fastify's base logger type describes; the cast only widens it.
      loggerInstance: options.logger as FastifyBaseLogger,
      // Per-request lines would drown the log at shard rates; metrics count requests instead.
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: RECORD_BODY_BYTES_MAX,
      keepAliveTimeout: SERVER_KEEP_ALIVE_MS,
      connectionTimeout: SOCKET_IDLE_TIMEOUT_MS,
      requestTimeout: 0,
      forceCloseConnections: "idle",
      return503OnClosing: true,
      // No implicit HEAD routes: every route the node answers is listed in core/internal-api.ts.
      exposeHeadRoutes: false,
    });
    this.app.server.headersTimeout = SERVER_HEADERS_TIMEOUT_MS;
    this.#channels = new RecordChannelServer({
      verifier: this.#verifier,
      log: this.#log,
      metrics: this.metrics,
      idleTimeoutMs: SOCKET_IDLE_TIMEOUT_MS,
      runBatch: (payload) => this.#channelBatch(payload),
      toWireError,
    });
    this.app.server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => this.#channels.handleUpgrade(request, socket, head));
    this.#installHooks();
    this.#installJsonParser();
    this.#installShardRoutes();
    this.#installRecordRoutes();
    this.#installLeaseRoutes();
    this.#installBucketRoutes();
    this.#installNodeRoutes();
  }

  /** Listens; returns the URL actually bound (port 0 picks a free port). */
  async listen(host: string, port: number): Promise<{ url: string; port: number }> {
    await this.app.listen({ host, port });
    const address = this.app.server.address();
    assert(address !== null && typeof address === "object", "a listening TCP server has an address");
    const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return { url: `http://${shownHost}:${address.port}`, port: address.port };
  }

  /**
   * Stops accepting, lets in-flight requests finish for SHUTDOWN_DRAIN_MS, then cuts the
   * connections left (their writes abort and remove their temporary files) and waits up to
   * SHUTDOWN_ABORT_MS for them. Never rejects; safe to call twice.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const closed = this.app.close().catch((error: unknown) => this.#log.warn({ err: error }, "closing the HTTP server failed"));
    const drained = Promise.all([closed, this.#channels.close(), this.#settled()]);
    if (await withinMs(drained, SHUTDOWN_DRAIN_MS)) return;
    this.#log.warn({ inFlight: this.#inFlight.size }, `in-flight requests still running after ${SHUTDOWN_DRAIN_MS} ms: cutting their connections`);
    this.app.server.closeAllConnections();
    this.#channels.destroyAll();
    if (!(await withinMs(drained, SHUTDOWN_ABORT_MS))) {
      this.#log.error({ inFlight: this.#inFlight.size }, `node operations still running ${SHUTDOWN_ABORT_MS} ms after the cut; closing anyway`);
    }
  }

  async #settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Runs one node operation, tracked so shutdown can wait for it. */
  async #call<T>(operation: Promise<T>): Promise<T> {
    this.#inFlight.add(operation);
    try {
      return await operation;
    } finally {
      this.#inFlight.delete(operation);
    }
  }

  // --- Hooks: auth first, metrics last, errors in one handler ----------------------------

  #installHooks(): void {
    this.app.addHook("onRequest", async (request) => {
      const signed = this.#authenticate(request);
      this.#signedHashes.set(request.raw, signed);
    });
    this.app.addHook("onSend", async (_request, reply, payload) => {
      // While closing, every connection ends with its response instead of idling in keep-alive.
      if (this.#closing !== undefined) reply.header("connection", "close");
      return payload;
    });
    this.app.addHook("onResponse", async (request, reply) => {
      const route = request.routeOptions.url ?? "unmatched";
      this.metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
      this.metrics.requestSeconds.observe({ route, method: request.method }, reply.elapsedTime / 1000);
    });
    this.app.setErrorHandler((error, request, reply) => this.#replyError(error, request, reply));
    this.app.setNotFoundHandler((request, reply) => {
      const error = new TesseraError("ERR_INVALID_ARGUMENT", `no such route: ${request.method} ${request.url}`, { method: request.method });
      this.#replyError(error, request, reply);
    });
  }

  /** Checks the signature and that the signed body kind is the route's; returns the signed hash. */
  #authenticate(request: FastifyRequest): string {
    let signed: string;
    try {
      signed = this.#verifier.verify(request.method, request.raw.url ?? "", request.headers);
    } catch (error) {
      if (isTesseraError(error, "ERR_UNAUTHORIZED")) this.metrics.authFailures.inc();
      throw error;
    }
    const kind = request.routeOptions.config.body ?? "none";
    if (kind === "stream" && signed !== UNSIGNED_STREAMING) throw unauthorized(`a shard body is signed as ${UNSIGNED_STREAMING}`);
    if (kind === "json" && signed === UNSIGNED_STREAMING) throw unauthorized("a JSON body must be signed with its SHA-256");
    if (kind === "none") {
      const length = request.headers["content-length"];
      const hasBody = (length !== undefined && length !== "0") || request.headers["transfer-encoding"] !== undefined;
      if (hasBody || signed !== EMPTY_BODY_SHA256) throw unauthorized("this route takes no body; sign the empty body");
    }
    return signed;
  }

  /** Logs a failed request by its kind: a broken invariant is fatal, a 5xx an error, a refusal debug. */
  #noteFailure(error: unknown, { status, body }: { status: number; body: WireError }, route: string | undefined): void {
    if (error instanceof AssertionError) {
      this.#log.fatal({ err: error }, "invariant broken");
      this.#onFatal(error);
    } else if (status >= 500) {
      this.#log.error({ err: error, route }, "request failed");
    } else {
      this.#log.debug({ code: body.code, message: body.message, route }, "request refused");
    }
  }

  #replyError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
    const { status, body } = toWireError(error);
    this.#noteFailure(error, { status, body }, request.routeOptions.url);
    if (!request.raw.complete) {
      // An unread body (an early refusal of an upload): drain it. Closing with unread bytes
      // would reset the connection and could lose this response (so no Connection: close,
      // whose close node:http does at once); the client closes once it has the answer.
      // A client that keeps sending is cut after UNREAD_BODY_LINGER_MS. (Fastify asks for
      // Connection: close on a body it refused; draining makes that unnecessary.)
      reply.removeHeader("connection");
      request.raw.resume();
      reply.raw.once("finish", () => {
        const socket = request.raw.socket;
        setTimeout(() => {
          if (!request.raw.complete) socket.destroy();
        }, UNREAD_BODY_LINGER_MS).unref();
      });
    }
    if (!reply.sent) void reply.code(status).send(body);
  }

  /** JSON bodies: bounded, held to their signed SHA-256, then parsed. */
  #installJsonParser(): void {
    this.app.removeContentTypeParser("application/json");
    this.app.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: RECORD_BODY_BYTES_MAX }, (request, body, done) => {
      try {
        assert(Buffer.isBuffer(body), "parseAs buffer gives a Buffer");
        checkBodyHash(this.#signedHashes.get(request.raw) ?? "", body);
        done(null, JSON.parse(body.toString("utf8")));
      } catch (error) {
        done(error instanceof SyntaxError ? invalidBody("not valid JSON") : (error as Error));
      }
    });
  }

  // --- Routes ------------------------------------------------------------------------------

  #installShardRoutes(): void {
    void this.app.register(async (scope) => {
      // The shard PUT body is not parsed at all: the handler streams request.raw to the node.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser("*", (_request, _payload, done) => done(null, undefined));
      scope.put<{ Params: ShardParams }>(ROUTES.shard, { config: { body: "stream" } }, async (request, reply) => {
        const { diskId, shard } = parseShardParams(request.params);
        const declaredBytes = declaredShardBytes(request);
        await this.#call(this.#node.writeShard(diskId, shard, new ShardBody(request.raw, declaredBytes, this.metrics), declaredBytes));
        return reply.code(204).send();
      });
    });
    this.app.get<{ Params: ShardParams; Querystring: StripeQuery }>(ROUTES.shard, async (request, reply) => {
      const { diskId, shard } = parseShardParams(request.params);
      const range = parseStripeRange(request.query);
      // A client that goes away ends the node's read (it closes its file) at once.
      const abandoned = new AbortController();
      reply.raw.once("close", () => {
        if (!reply.raw.writableFinished) abandoned.abort();
      });
      const iterator = this.#node.readShard(diskId, shard, range, { signal: abandoned.signal })[Symbol.asyncIterator]();
      // Read the first piece before the headers, so a missing shard is a 404, not a cut stream.
      const first = await this.#call(iterator.next());
      // From here the route writes the response itself (fastify's onResponse hooks still run).
      reply.hijack();
      const headers: Record<string, string> = { "content-type": "application/octet-stream" };
      // While closing, every connection ends with its response (as the onSend hook does).
      if (this.#closing !== undefined) headers.connection = "close";
      reply.raw.writeHead(200, headers);
      await sendShard(reply.raw, first, iterator, this.metrics, request.log);
    });
    this.app.delete<{ Params: ShardParams }>(ROUTES.shard, async (request) => {
      const { diskId, shard } = parseShardParams(request.params);
      return { deleted: await this.#call(this.#node.deleteShard(diskId, shard)) };
    });
  }

  #installRecordRoutes(): void {
    const json = { config: { body: "json" as const } };
    type DiskParams = { Params: { diskId?: string }; Body: unknown };
    const toWire = (records: readonly ObjectRecord[]) => records.map(recordToWire);
    this.app.put<DiskParams>(ROUTES.recordPut, json, async (request) => {
      const diskId = parseDiskId(request.params.diskId);
      const { record, fence } = recordPutFromWire(request.body);
      return await this.#call(this.#node.putRecord(diskId, record, fence));
    });
    this.app.post(ROUTES.recordBatch, json, async (request, reply) => {
      return reply.type("application/json; charset=utf-8").send(await this.#runBatch(request.body));
    });
    this.app.post<DiskParams>(ROUTES.recordGet, json, async (request) => {
      const diskId = parseDiskId(request.params.diskId);
      const { bucket, key } = recordKeyFromWire(request.body);
      return { records: toWire(await this.#call(this.#node.getRecords(diskId, bucket, key))) };
    });
    this.app.post<DiskParams>(ROUTES.recordDelete, json, async (request) => {
      const diskId = parseDiskId(request.params.diskId);
      const { bucket, key, versionId } = recordVersionFromWire(request.body);
      return { deleted: await this.#call(this.#node.deleteRecord(diskId, bucket, key, versionId)) };
    });
    this.app.post<DiskParams>(ROUTES.recordList, json, async (request) => {
      const diskId = parseDiskId(request.params.diskId);
      const page = await this.#call(this.#node.listRecords(diskId, listOptionsFromWire(request.body)));
      return { ...page, records: toWire(page.records) };
    });
    this.app.post<DiskParams>(ROUTES.shardList, json, async (request) => {
      const diskId = parseDiskId(request.params.diskId);
      return this.#call(this.#node.listShards(diskId, shardListQueryFromWire(request.body)));
    });
    this.app.post<DiskParams>(ROUTES.recordByPlacement, json, async (request) => {
      const diskId = parseDiskId(request.params.diskId);
      const page = await this.#call(this.#node.listRecordsByPlacement(diskId, placementQueryFromWire(request.body)));
      return { ...page, records: toWire(page.records) };
    });
  }

  /** A batch's answer text: each result is JSON text already (#batchOpJson). */
  async #runBatch(body: unknown): Promise<string> {
    const ops = batchOpsFromWire(body);
    const results = await Promise.all(ops.map((op) => this.#batchOpJson(op)));
    return `{"results":[${results.join(",")}]}`;
  }

  /**
   * A batch from a record channel: its answer, or the error that refused it whole as
   * {"error": ...} (the channel goes on). A broken invariant is fatal, as on any route.
   */
  async #channelBatch(payload: Buffer): Promise<string> {
    try {
      let body: unknown;
      try {
        body = JSON.parse(payload.toString("utf8"));
      } catch {
        throw invalidBody("a record channel frame is not JSON");
      }
      return await this.#runBatch(body);
    } catch (error) {
      const wire = toWireError(error);
      this.#noteFailure(error, wire, ROUTES.recordChannel);
      return JSON.stringify({ error: wire.body });
    }
  }

  /**
   * One operation of a batch, answered on its own (its failure is only its caller's), as the
   * JSON text of its BatchResultWire. A record read answers with the records' stored text,
   * neither parsed nor serialized again (ServedNode.getRecordsJson).
   */
  async #batchOpJson(op: BatchOp): Promise<string> {
    try {
      const diskId = parseDiskId(op.diskId);
      if (op.op === "getRecords") return `{"ok":{"records":[${(await this.#call(this.#node.getRecordsJson(diskId, op.bucket, op.key))).join(",")}]}}`;
      return JSON.stringify({ ok: await this.#call(this.#node.putRecord(diskId, recordFromWire(op.record))) } satisfies BatchResultWire);
    } catch (error) {
      if (error instanceof AssertionError) throw error; // a bug: the whole request fails loudly
      const { body } = toWireError(error);
      if (body.code === "ERR_INTERNAL") this.#log.error({ err: error, op: op.op }, "batched record operation failed");
      return JSON.stringify({ error: body } satisfies BatchResultWire);
    }
  }

  #installLeaseRoutes(): void {
    const json = { config: { body: "json" as const } };
    type DiskParams = { Params: { diskId?: string }; Body: unknown };
    this.app.post<DiskParams>(ROUTES.leaseAcquire, json, async (request) => {
      const diskId = parseDiskId(request.params.diskId);
      return this.#call(this.#node.acquireLease(diskId, leaseRequestFromWire(request.body)));
    });
    this.app.post<DiskParams>(ROUTES.leaseRelease, json, async (request) => {
      const diskId = parseDiskId(request.params.diskId);
      const { bucket, key, fence } = leaseReleaseFromWire(request.body);
      return { released: await this.#call(this.#node.releaseLease(diskId, bucket, key, fence)) };
    });
  }

  #installBucketRoutes(): void {
    type BucketParams = { Params: { bucket?: string }; Body: unknown };
    this.app.put<BucketParams>(ROUTES.bucket, { config: { body: "json" } }, async (request, reply) => {
      const name = parseBucketName(request.params.bucket);
      await this.#call(this.#node.putBucket({ name, created: bucketCreatedFromWire(request.body) }));
      return reply.code(204).send();
    });
    this.app.get<BucketParams>(ROUTES.bucket, async (request) => {
      const bucket = await this.#call(this.#node.getBucket(parseBucketName(request.params.bucket)));
      return { bucket: bucket ?? null };
    });
    this.app.delete<BucketParams>(ROUTES.bucket, async (request) => {
      return { deleted: await this.#call(this.#node.deleteBucket(parseBucketName(request.params.bucket))) };
    });
    this.app.get(ROUTES.buckets, async () => ({ buckets: await this.#call(this.#node.listBuckets()) }));
  }

  #installNodeRoutes(): void {
    this.app.get(ROUTES.health, async () => this.#call(this.#node.health()));
    this.app.get(ROUTES.metrics, async (_request, reply) => {
      const text = await this.#call(this.metrics.render());
      return reply.type(this.metrics.contentType).send(text);
    });
  }
}

/** True if `promise` settles within `ms`. */
async function withinMs(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
