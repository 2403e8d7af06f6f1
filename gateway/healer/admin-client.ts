/**
 * A client of the gateway's admin API (admin-api.ts) for the `tessera heal` and `tessera
 * cluster` commands and for tests: every request signed with SigV4 (header authentication,
 * empty body), answers parsed as JSON, errors thrown with the server's code and message.
 */
import { request } from "undici";
import type { ClusterStatus } from "./cluster-status.js";
import type { RepairOutcome } from "./repair-object.js";
import type { HealerStatus } from "./status.js";
import {
  EMPTY_SHA256,
  SERVICE,
  SIGV4_ALGORITHM,
  canonicalQuery,
  canonicalRequest,
  deriveSigningKey,
  formatAmzDate,
  hmacSha256,
  parseQueryPairs,
  stringToSign,
  type AccessKeyPair,
} from "../s3/sigv4.js";

/** How long one admin call may take: status is computed in memory; a reload reads one file. */
export const ADMIN_REQUEST_TIMEOUT_MS = 30_000;
const SIGNED_HEADERS = ["host", "x-amz-content-sha256", "x-amz-date"] as const;

export class AdminApiError extends Error {
  override readonly name = "AdminApiError";
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface AdminClientOptions {
  /** The gateway's URL, e.g. http://127.0.0.1:9000. */
  readonly endpoint: string;
  readonly credentials: AccessKeyPair;
  readonly region: string;
}

/** The SigV4 headers of one request without a body. */
export function signAdminRequest(method: string, url: URL, credentials: AccessKeyPair, region: string, now = Date.now()): Record<string, string> {
  const amzDate = formatAmzDate(now);
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = { host: url.host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amzDate };
  const query = canonicalQuery(parseQueryPairs(url.search.replace(/^\?/, "")));
  const canonical = canonicalRequest({ method, path: url.pathname, query: url.search, headers }, query, SIGNED_HEADERS, EMPTY_SHA256);
  const scope = `${date}/${region}/${SERVICE}/aws4_request`;
  const signature = hmacSha256(deriveSigningKey(credentials.secretAccessKey, date, region, SERVICE), stringToSign(amzDate, scope, canonical)).toString("hex");
  return {
    ...headers,
    authorization: `${SIGV4_ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${SIGNED_HEADERS.join(";")}, Signature=${signature}`,
  };
}

export class AdminClient {
  readonly #options: AdminClientOptions;

  constructor(options: AdminClientOptions) {
    this.#options = options;
  }

  async call<T>(method: "GET" | "POST", path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
    const url = new URL(path, this.#options.endpoint);
    for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, String(value));
    const headers = signAdminRequest(method, url, this.#options.credentials, this.#options.region);
    const response = await request(url, { method, headers, headersTimeout: ADMIN_REQUEST_TIMEOUT_MS, bodyTimeout: ADMIN_REQUEST_TIMEOUT_MS });
    const text = await response.body.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new AdminApiError(response.statusCode, "NotJson", `${method} ${url.pathname}: HTTP ${response.statusCode}, not a Tessera admin answer: ${text.slice(0, 200)}`);
    }
    if (response.statusCode >= 400) {
      const error = (body as { error?: { code?: string; message?: string } }).error;
      throw new AdminApiError(response.statusCode, error?.code ?? "Unknown", error?.message ?? `HTTP ${response.statusCode}`);
    }
    return body as T;
  }

  healStatus(): Promise<HealerStatus> {
    return this.call("GET", "/_tessera/admin/heal");
  }

  clusterStatus(): Promise<ClusterStatus> {
    return this.call("GET", "/_tessera/admin/cluster");
  }

  requestScan(kind: "scan" | "scrub" | "rebalance"): Promise<{ requested: string }> {
    return this.call("POST", "/_tessera/admin/heal/scan", { kind });
  }

  throttle(settings: { concurrency?: number; bandwidth?: string }): Promise<{ concurrency: number; bandwidthBytesPerSecond: number }> {
    return this.call("POST", "/_tessera/admin/heal/throttle", settings);
  }

  repair(bucket: string, key: string, verify = false): Promise<RepairOutcome> {
    return this.call("POST", "/_tessera/admin/heal/repair", { bucket, key, verify: verify ? 1 : undefined });
  }

  reload(): Promise<{ epoch: number; unchanged: boolean; added: string[]; removed: string[] }> {
    return this.call("POST", "/_tessera/admin/cluster/reload");
  }
}
