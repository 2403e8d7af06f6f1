/**
 * The gateway's admin API, under /_tessera/: a path S3 can never use (a bucket name cannot
 * start with '_'), so it never shadows a bucket. Authenticated with SigV4 by any of the
 * gateway's own S3 credentials (Tessera has no IAM: every key is an administrator), with an
 * empty body; parameters are in the query. Answers JSON; errors are {"error": {code, message}}.
 *
 *   GET  /_tessera/admin/heal                         the healer's status (status.ts)
 *   POST /_tessera/admin/heal/scan?kind=K             start a scan now: scan, scrub or rebalance
 *   POST /_tessera/admin/heal/throttle?concurrency=N&bandwidth=B   B in bytes/s ("50MiB"), 0: unlimited
 *   POST /_tessera/admin/heal/repair?bucket=B&key=K[&verify=1]     repair one object now
 *   GET  /_tessera/admin/cluster                      nodes, disks, states, usage, the map
 *   POST /_tessera/admin/cluster/reload               reload the map file (as SIGHUP does)
 *   GET  /_tessera/metrics                            Prometheus metrics (no authentication)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { TesseraError, isTesseraError } from "../../core/errors.js";
import { headersFromRaw, type SigV4Verifier } from "../s3/sigv4.js";
import { S3Error } from "../s3/errors.js";
import { clusterStatus } from "./cluster-status.js";
import type { Healer } from "./healer.js";
import { REBUILD_CONCURRENCY_MAX } from "./limits.js";
import type { GatewayMetrics } from "./metrics.js";
import type { ScanKind } from "./scan.js";
import { parseByteSize } from "./settings.js";

export const ADMIN_PREFIX = "/_tessera/";
const SCAN_KINDS: readonly ScanKind[] = ["scan", "scrub", "rebalance"];

export interface AdminOptions {
  readonly healer: Healer;
  readonly verifier: SigV4Verifier;
  readonly metrics: GatewayMetrics;
  /** Reloads the map file and hands it to the healer; throws a TesseraError when refused. */
  readonly reload: () => Promise<unknown>;
  readonly mapFile?: string;
}

class AdminError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

type Handler = (query: URLSearchParams) => Promise<unknown>;

function routes(options: AdminOptions): Record<string, Handler> {
  const { healer } = options;
  return {
    "GET admin/heal": async () => healer.status(),
    "POST admin/heal/scan": async (query) => {
      const kind = query.get("kind") ?? "scan";
      if (!SCAN_KINDS.includes(kind as ScanKind)) throw new AdminError(400, "InvalidArgument", `kind must be one of ${SCAN_KINDS.join(", ")}, got '${kind}'`);
      healer.requestScan(kind as ScanKind);
      return { requested: kind };
    },
    "POST admin/heal/throttle": async (query) => throttle(healer, query),
    "POST admin/heal/repair": async (query) => {
      const bucket = query.get("bucket");
      const key = query.get("key");
      if (bucket === null || key === null || bucket === "" || key === "") throw new AdminError(400, "InvalidArgument", "bucket and key are required");
      return healer.repairNow(bucket, key, { verify: query.get("verify") === "1" });
    },
    "GET admin/cluster": async () => clusterStatus(healer, options.mapFile),
    "POST admin/cluster/reload": async () => options.reload(),
  };
}

function throttle(healer: Healer, query: URLSearchParams): unknown {
  const concurrency = query.get("concurrency");
  const bandwidth = query.get("bandwidth");
  if (concurrency === null && bandwidth === null) throw new AdminError(400, "InvalidArgument", "give concurrency and/or bandwidth");
  if (concurrency !== null) {
    const value = /^[0-9]+$/.test(concurrency) ? Number(concurrency) : NaN;
    if (!Number.isSafeInteger(value) || value < 1 || value > REBUILD_CONCURRENCY_MAX) throw new AdminError(400, "InvalidArgument", `concurrency must be a whole number in 1..${REBUILD_CONCURRENCY_MAX}, got '${concurrency}'`);
    healer.setConcurrency(value);
  }
  if (bandwidth !== null) {
    const value = parseByteSize(bandwidth);
    if (value === undefined) throw new AdminError(400, "InvalidArgument", `bandwidth must be bytes per second, optionally with a unit (B, KB, MB, GB, KiB, MiB, GiB), got '${bandwidth}'`);
    healer.setBandwidth(value);
  }
  return { concurrency: healer.concurrency, bandwidthBytesPerSecond: healer.throttle.bytesPerSecond };
}

export function registerAdminRoutes(app: FastifyInstance, options: AdminOptions): void {
  const table = routes(options);
  app.route({
    method: ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"],
    url: `${ADMIN_PREFIX}*`,
    handler: (request, reply) => handleAdmin(request, reply, options, table),
  });
}

async function handleAdmin(request: FastifyRequest, reply: FastifyReply, options: AdminOptions, table: Record<string, Handler>): Promise<void> {
  const url = request.raw.url ?? "/";
  const questionMark = url.indexOf("?");
  const path = questionMark === -1 ? url : url.slice(0, questionMark);
  const query = questionMark === -1 ? "" : url.slice(questionMark + 1);
  const method = request.raw.method ?? "GET";
  try {
    if (path === `${ADMIN_PREFIX}metrics` && method === "GET") {
      await reply.header("content-type", options.metrics.contentType).send(await options.metrics.render());
      return;
    }
    const handler = table[`${method} ${path.slice(ADMIN_PREFIX.length)}`];
    if (handler === undefined) throw new AdminError(404, "NoSuchAdminEndpoint", `no admin endpoint ${method} ${path}`);
    authenticate(request, options.verifier, { method, path, query });
    await reply.header("content-type", "application/json").send(JSON.stringify(await handler(new URLSearchParams(query))));
  } catch (error) {
    const failure = asAdminError(error);
    await reply.code(failure.status).header("content-type", "application/json").send(JSON.stringify({ error: { code: failure.code, message: failure.message } }));
  }
}

function authenticate(request: FastifyRequest, verifier: SigV4Verifier, target: { method: string; path: string; query: string }): void {
  const headers = headersFromRaw(request.raw.rawHeaders);
  const length = Number(request.headers["content-length"] ?? 0);
  if (request.headers["transfer-encoding"] !== undefined || length > 0) throw new AdminError(400, "InvalidRequest", "admin requests carry no body: parameters go in the query");
  const auth = verifier.verify({ ...target, headers });
  if (auth.payload.kind === "streaming") throw new AdminError(400, "InvalidRequest", "admin requests carry no body");
}

function asAdminError(error: unknown): AdminError {
  if (error instanceof AdminError) return error;
  if (error instanceof S3Error) return new AdminError(error.status, error.code, error.message);
  if (isTesseraError(error, "ERR_INVALID_CLUSTER_MAP") || isTesseraError(error, "ERR_VERSION_CONFLICT")) return new AdminError(409, "MapRefused", error.message);
  if (error instanceof TesseraError) return new AdminError(503, error.code, error.message);
  return new AdminError(500, "InternalError", error instanceof Error ? error.message : String(error));
}
