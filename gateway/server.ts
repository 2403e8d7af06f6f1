/**
 * The S3 gateway's HTTP front: every request is routed into an Endpoint (gateway/s3/router),
 * authenticated (SigV4), dispatched through one exhaustive table to a handler, and every
 * failure is rendered from the one S3 error table. Bodies are never parsed by fastify: the
 * handlers stream them through the payload checks into the erasure encoder.
 */
import { randomHex } from "../core/random-pool.js";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { assert } from "../core/assert.js";
import { TesseraError } from "../core/errors.js";
import type { Cluster } from "./objects/cluster.js";
import { ObjectStore, type RepairQueue } from "./objects/object-store.js";
import { NodeRepairQueue } from "./objects/repair-queue.js";
import { bucketHandlers } from "./handlers/buckets.js";
import { copyHandlers } from "./handlers/copy.js";
import { multipartHandlers } from "./handlers/multipart.js";
import { objectHandlers } from "./handlers/objects.js";
import { sweepAbandonedUploads, UPLOAD_ABANDONED_AGE_MS_DEFAULT, UPLOAD_SWEEP_INTERVAL_MS_DEFAULT, type SweepResult } from "./objects/multipart-sweep.js";
import type { HandlerContext, RequestContext } from "./handlers/context.js";
import { renderErrorXml, S3Error, toS3Error } from "./s3/errors.js";
import { dispatchEndpoint, ENDPOINT_KINDS, routeRequest, type EndpointHandlers, type EndpointKind, type Route } from "./s3/router.js";
import { headersFromRaw, SigV4Verifier, staticCredentials, type AccessKeyPair } from "./s3/sigv4.js";

/**
 * Idle time before the server closes a keep-alive connection. Above the AWS SDK's and the
 * aws CLI's idle pool timeouts, so clients close first and never reuse a closing socket.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** Bytes of a request id (hex in x-amz-request-id): unique enough to find a request in logs. */
const REQUEST_ID_BYTES = 8;

export interface GatewayOptions {
  readonly cluster: Cluster;
  readonly credentials: readonly AccessKeyPair[];
  readonly region: string;
  /** Hosts under which `<bucket>.<host>` is virtual-hosted addressing, e.g. "localhost". */
  readonly baseDomains: readonly string[];
  readonly logger: Logger;
  /** Where objects needing repair go; by default, records in the reserved repair bucket on the nodes. */
  readonly repairs?: RepairQueue;
  /** Multipart uploads idle longer than this are aborted by the sweep (default 7 days). */
  readonly uploadMaxAgeMs?: number;
  /** How often the gateway sweeps abandoned uploads (default hourly); 0 turns the timer off. */
  readonly uploadSweepIntervalMs?: number;
  /** Objects up to this size are stored as copies (ObjectStoreOptions.smallCopiesBytes). */
  readonly smallCopiesBytes?: number;
}

export interface Gateway {
  readonly app: FastifyInstance;
  readonly store: ObjectStore;
  readonly repairs: NodeRepairQueue;
  /** Aborts multipart uploads idle longer than the configured age, as of `now`. */
  sweepUploads(now?: number): Promise<SweepResult>;
  close(): Promise<void>;
}

/** Logs each object queued for repair, then hands it to the durable queue. */
function loggingRepairQueue(logger: Logger, durable: NodeRepairQueue): RepairQueue {
  return {
    enqueue: (bucket, key, reason) => {
      logger.warn({ bucket, key, reason }, "object queued for repair");
      durable.enqueue(bucket, key, reason);
    },
  };
}

export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const logger = options.logger;
  const repairs = new NodeRepairQueue(options.cluster, { onError: (error) => logger.warn({ err: error }, "could not record an object for repair") });
  const store = new ObjectStore({
    cluster: options.cluster,
    repairs: options.repairs ?? loggingRepairQueue(logger, repairs),
    onBackgroundError: (error, what) => logger.warn({ err: error }, `background: ${what} failed`),
    ...(options.smallCopiesBytes === undefined ? {} : { smallCopiesBytes: options.smallCopiesBytes }),
  });
  const verifier = new SigV4Verifier({ credentials: staticCredentials(options.credentials), presignedV2: true });
  const context: HandlerContext = { store, region: options.region, owner: { id: options.credentials[0]?.accessKeyId ?? "tessera", displayName: "tessera" }, logger };
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), exposeHeadRoutes: false, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, return503OnClosing: true });
  // Bodies stay streams for the S3 layer: fastify must not parse or buffer them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_request, _payload, done) => done(null, undefined));
  app.route({
    method: ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"],
    url: "*",
    handler: (request, reply) => handle(request, reply, { verifier, context, baseDomains: options.baseDomains }),
  });
  const uploadMaxAgeMs = options.uploadMaxAgeMs ?? UPLOAD_ABANDONED_AGE_MS_DEFAULT;
  requirePositive(uploadMaxAgeMs, "uploadMaxAgeMs");
  const sweepUploads = (now = Date.now()): Promise<SweepResult> => sweepAbandonedUploads(store, now, uploadMaxAgeMs);
  const sweeper = startSweeper(options.uploadSweepIntervalMs ?? UPLOAD_SWEEP_INTERVAL_MS_DEFAULT, sweepUploads, logger);
  return {
    app,
    store,
    repairs,
    sweepUploads,
    close: async () => {
      clearInterval(sweeper);
      await app.close();
      await store.settle();
      await repairs.settle();
    },
  };
}

function requirePositive(value: number, option: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new TesseraError("ERR_INVALID_ARGUMENT", `${option}: must be a positive integer of milliseconds, got ${value}`, { option });
}

/** The periodic abandoned-upload sweep; one at a time, never keeping the process alive. */
function startSweeper(intervalMs: number, sweep: () => Promise<SweepResult>, logger: Logger): NodeJS.Timeout | undefined {
  if (intervalMs === 0) return undefined;
  requirePositive(intervalMs, "uploadSweepIntervalMs");
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweep()
      .then((result) => {
        if (result.uploadsRemoved + result.partsRemoved + result.staleRecordsRemoved + result.failures > 0) logger.info(result, "abandoned multipart uploads swept");
      })
      .catch((error: unknown) => logger.warn({ err: error }, "abandoned-upload sweep failed"))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return timer;
}

interface Pipeline {
  readonly verifier: SigV4Verifier;
  readonly context: HandlerContext;
  readonly baseDomains: readonly string[];
}

async function handle(request: FastifyRequest, reply: FastifyReply, pipeline: Pipeline): Promise<void> {
  const requestId = randomHex(REQUEST_ID_BYTES).toUpperCase();
  const url = request.raw.url ?? "/";
  const questionMark = url.indexOf("?");
  const path = questionMark === -1 ? url : url.slice(0, questionMark);
  const query = questionMark === -1 ? "" : url.slice(questionMark + 1);
  const headers = headersFromRaw(request.raw.rawHeaders);
  const method = request.raw.method ?? "GET";
  reply.header("x-amz-request-id", requestId).header("server", "Tessera");
  let resource = path;
  const started = process.hrtime.bigint();
  try {
    const route: Route = routeRequest({ method, path, query, headers }, { baseDomains: pipeline.baseDomains });
    resource = route.resource;
    const hostBucket = route.addressing === "virtual-hosted" && "bucket" in route.endpoint ? route.endpoint.bucket : undefined;
    const auth = pipeline.verifier.verify({ method, path, query, headers, ...(hostBucket === undefined ? {} : { hostBucket }) });
    const requestContext: RequestContext = { ...pipeline.context, request, reply, headers, auth, route, requestId };
    await dispatchEndpoint(route.endpoint, handlersFor(route.endpoint.kind, requestContext));
    logRequest(pipeline.context.logger, { method, resource, status: reply.statusCode, requestId, started });
  } catch (error) {
    await sendError(reply, error, { method, resource, requestId, logger: pipeline.context.logger });
    logRequest(pipeline.context.logger, { method, resource, status: reply.statusCode, requestId, started, error });
  }
}

function logRequest(logger: Logger, entry: { method: string; resource: string; status: number; requestId: string; started: bigint; error?: unknown }): void {
  const ms = Number(process.hrtime.bigint() - entry.started) / 1e6;
  const fields = { method: entry.method, resource: entry.resource, status: entry.status, requestId: entry.requestId, ms: Math.round(ms) };
  if (entry.status >= 500) logger.error({ ...fields, err: entry.error }, "request failed");
  else logger.debug(fields, "request");
}

async function sendError(reply: FastifyReply, error: unknown, where: { method: string; resource: string; requestId: string; logger: Logger }): Promise<void> {
  const s3 = toS3Error(error);
  if (reply.sent || reply.raw.headersSent) {
    // Headers are gone (a GET failed mid-stream): the only honest signal left is to cut the
    // connection, so the client sees a short body instead of a clean end.
    where.logger.warn({ err: error, resource: where.resource }, "response failed after headers were sent");
    reply.raw.destroy(error instanceof Error ? error : new Error(String(error)));
    return;
  }
  reply.code(s3.status).header("content-type", "application/xml");
  if (s3.code === "ServiceUnavailable" || s3.code === "SlowDown") reply.header("retry-after", "1");
  if (where.method === "HEAD" || s3.status === 304) {
    await reply.send();
    return;
  }
  await reply.send(renderErrorXml(s3, where.requestId, where.resource));
}

type HandlerFactory = (context: RequestContext) => Partial<EndpointHandlers<Promise<void>>>;

/** The handler files, in order of precedence: a later one's handler for a kind wins. */
const HANDLER_FACTORIES: readonly HandlerFactory[] = [bucketHandlers, objectHandlers, multipartHandlers, copyHandlers];

/**
 * Which handler file serves each endpoint kind, learnt once from the tables the files return
 * (building them only makes closures): a request then builds its own file's table, not all
 * four plus the NotImplemented one, about 40 closures and four spreads per request.
 */
const FACTORY_OF_KIND: ReadonlyMap<string, HandlerFactory> = new Map(
  HANDLER_FACTORIES.flatMap((factory) => Object.keys(factory({} as RequestContext)).map((kind) => [kind, factory] as const)),
);

/** The handler table for one request: its kind's file's table (which has that kind), or NotImplemented's. */
function handlersFor(kind: EndpointKind, context: RequestContext): EndpointHandlers<Promise<void>> {
  const factory = FACTORY_OF_KIND.get(kind);
  if (factory === undefined) return NOT_IMPLEMENTED;
  const table = factory(context);
  assert(table[kind] !== undefined, "a handler file serves the kinds its table named at start-up");
  return table as EndpointHandlers<Promise<void>>;
}

/** Every endpoint answers NotImplemented unless a handler file claims it. */
const NOT_IMPLEMENTED = Object.fromEntries(
  ENDPOINT_KINDS.map((kind) => [kind, () => Promise.reject(new S3Error("NotImplemented", `${kind} is not implemented by Tessera yet.`))]),
) as unknown as EndpointHandlers<Promise<void>>;
