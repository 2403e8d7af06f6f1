/**
 * Proof of the cluster secret on every internal request (gateway or healer -> storage node).
 *
 * The client signs, with HMAC-SHA256 keyed by the cluster secret, one canonical string:
 *
 *   TESSERA-HMAC-SHA256-V1 \n target node id \n METHOD \n path+query as sent \n
 *   x-tessera-date (ms since the epoch) \n x-tessera-nonce (32 hex) \n x-tessera-content-sha256 \n
 *   Content-Length (streamed bodies only; a hashed body's length is covered by its hash)
 *
 * and sends it as x-tessera-signature (64 hex). The node refuses (ERR_UNAUTHORIZED) a request
 * whose signature does not match, whose date is outside AUTH_CLOCK_SKEW_MS_MAX of its own
 * clock, whose nonce it has already seen inside that window (a replay), or that was signed for
 * another node (nonce caches are per node, so without the node id a request captured on its
 * way to n1 could be replayed against n2).
 *
 * x-tessera-content-sha256 is the hex SHA-256 of the body (JSON bodies: the node hashes what
 * it received and compares), or UNSIGNED_STREAMING for shard bodies. A shard body is streamed
 * to disk as it arrives, so its hash is known only at the end, too late to refuse it; its
 * integrity is instead covered by the shard format's own checksums (header CRC32C, one
 * checksum per chunk, exact length), verified before the shard is committed. The secret,
 * date, nonce, path and Content-Length are still signed, so only a holder of the secret can
 * start a shard write. Confidentiality is not provided: nodes listen on loopback or a private
 * network; TLS in front is the operator's choice.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { randomHex } from "./random-pool.js";
import { readFile } from "node:fs/promises";
import { assert } from "./assert.js";
import { TesseraError, requireArgument } from "./errors.js";

/**
 * How far a request's date may be from the node's clock, either way. Wider tolerates worse
 * clock sync; it also widens the replay window, so the nonce cache must remember that long.
 * Internal traffic is between machines of one cluster, NTP-synced to milliseconds, so 30 s
 * is generous; S3's 5 minutes would make the nonce cache ten times larger at the same rate.
 */
export const AUTH_CLOCK_SKEW_MS_MAX = 30_000;
/**
 * Nonces remembered at most. Each costs about 100 bytes, so this caps the cache at ~100 MB;
 * it is reached only above ~16,000 signed requests/s sustained over a 2 * skew window (a
 * small PUT is about 12 internal requests). When full, new requests get
 * ERR_NODE_UNAVAILABLE (retry elsewhere), never an unchecked pass.
 */
export const NONCE_CACHE_ENTRIES_MAX = 1_000_000;
/** Random bytes per nonce: 128 bits, so two honest requests never collide. */
export const NONCE_BYTES = 16;

/** A shorter secret is guessable offline from one captured request. 32 bytes = 256 bits if random. */
export const SECRET_BYTES_MIN = 32;
/** A longer "secret" file is almost certainly the wrong file; also bounds what we read. */
export const SECRET_BYTES_MAX = 4096;

export const AUTH_HEADERS = {
  date: "x-tessera-date",
  nonce: "x-tessera-nonce",
  contentSha256: "x-tessera-content-sha256",
  node: "x-tessera-node",
  signature: "x-tessera-signature",
} as const;

/** The content hash of a streamed shard body (see the top of this file for why that is safe). */
export const UNSIGNED_STREAMING = "UNSIGNED-STREAMING";
const SIGNATURE_SCHEME = "TESSERA-HMAC-SHA256-V1";
const HEX_SHA256_PATTERN = /^[0-9a-f]{64}$/;
const NONCE_PATTERN = new RegExp(`^[0-9a-f]{${NONCE_BYTES * 2}}$`);
/** Milliseconds since the epoch, without sign or fraction; 16 digits reach the year 318857. */
const DATE_PATTERN = /^[0-9]{1,16}$/;

export function sha256Hex(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("hex");
}

/** The content hash of a request without a body. */
export const EMPTY_BODY_SHA256 = sha256Hex(Buffer.alloc(0));

/**
 * The cluster secret. The key stays in a private field and never prints, so a logged options
 * object cannot leak it.
 */
export class ClusterSecret {
  readonly #key: Buffer;

  private constructor(key: Buffer) {
    this.#key = key;
  }

  static fromBytes(bytes: Uint8Array): ClusterSecret {
    requireArgument(bytes.length >= SECRET_BYTES_MIN, "secret", `must be at least ${SECRET_BYTES_MIN} bytes, got ${bytes.length}`);
    requireArgument(bytes.length <= SECRET_BYTES_MAX, "secret", `must be at most ${SECRET_BYTES_MAX} bytes, got ${bytes.length}`);
    return new ClusterSecret(Buffer.from(bytes));
  }

  /** Reads a secret file; surrounding whitespace (the usual trailing newline) is not part of it. */
  static async fromFile(path: string): Promise<ClusterSecret> {
    let contents: Buffer;
    try {
      contents = await readFile(path);
    } catch (error) {
      const reason = error instanceof Error && "code" in error ? String(error.code) : String(error);
      throw new TesseraError("ERR_INVALID_ARGUMENT", `secret file ${path}: cannot read it (${reason})`, { option: "secret-file" });
    }
    const secret = Buffer.from(contents.toString("utf8").trim(), "utf8");
    if (secret.length < SECRET_BYTES_MIN || secret.length > SECRET_BYTES_MAX) {
      throw new TesseraError(
        "ERR_INVALID_ARGUMENT",
        `secret file ${path}: the secret must be ${SECRET_BYTES_MIN}..${SECRET_BYTES_MAX} bytes, got ${secret.length}`,
        { option: "secret-file" },
      );
    }
    return new ClusterSecret(secret);
  }

  /** HMAC-SHA256 of `text` under the secret. */
  mac(text: string): Buffer {
    return createHmac("sha256", this.#key).update(text, "utf8").digest();
  }

  toJSON(): string {
    return "[cluster secret]";
  }

  toString(): string {
    return "[cluster secret]";
  }
}

/** What a signature covers. */
export interface SignedRequest {
  /** The node the request is meant for. */
  readonly nodeId: string;
  readonly method: string;
  /** Exactly as it goes on the request line: path plus query, already percent-encoded. */
  readonly pathAndQuery: string;
  /** Hex SHA-256 of the body, or UNSIGNED_STREAMING. */
  readonly contentSha256: string;
  /** The Content-Length header as sent; signed only with UNSIGNED_STREAMING. */
  readonly contentLength?: string;
}

function canonicalString(request: SignedRequest, date: string, nonce: string): string {
  const length = request.contentSha256 === UNSIGNED_STREAMING ? (request.contentLength ?? "") : "";
  return [SIGNATURE_SCHEME, request.nodeId, request.method.toUpperCase(), request.pathAndQuery, date, nonce, request.contentSha256, length].join("\n");
}

/** The auth headers for one request. Every call draws a fresh nonce. */
export function signRequest(secret: ClusterSecret, request: SignedRequest, now: number = Date.now()): Record<string, string> {
  assert(request.contentSha256 === UNSIGNED_STREAMING || HEX_SHA256_PATTERN.test(request.contentSha256), "content hash is hex SHA-256 or UNSIGNED_STREAMING");
  assert(Number.isSafeInteger(now) && now >= 0, "the clock reads milliseconds since the epoch");
  const date = String(now);
  const nonce = randomHex(NONCE_BYTES); // pooled: one CSPRNG call per 256 requests
  return {
    [AUTH_HEADERS.date]: date,
    [AUTH_HEADERS.nonce]: nonce,
    [AUTH_HEADERS.contentSha256]: request.contentSha256,
    [AUTH_HEADERS.node]: request.nodeId,
    [AUTH_HEADERS.signature]: secret.mac(canonicalString(request, date, nonce)).toString("hex"),
  };
}

function unauthorized(reason: string): TesseraError {
  return new TesseraError("ERR_UNAUTHORIZED", `internal request refused: ${reason}`, { reason });
}

/**
 * Nonces seen inside the skew window, each until its request's date leaves the window.
 * Map order is arrival order, close to expiry order; eviction stops at the first live entry,
 * so an entry is sometimes kept too long (memory) but never dropped too early (a replay).
 */
export class NonceCache {
  readonly #expiries = new Map<string, number>();
  readonly #entriesMax: number;

  constructor(entriesMax: number = NONCE_CACHE_ENTRIES_MAX) {
    requireArgument(Number.isSafeInteger(entriesMax) && entriesMax > 0, "entriesMax", `must be a positive integer, got ${entriesMax}`);
    this.#entriesMax = entriesMax;
  }

  get size(): number {
    return this.#expiries.size;
  }

  /** Remembers `nonce` until `expiresAt`; throws if it is already remembered (a replay). */
  add(nonce: string, expiresAt: number, now: number): void {
    this.#evict(now);
    if (this.#expiries.has(nonce)) throw unauthorized("replayed nonce");
    if (this.#expiries.size >= this.#entriesMax) {
      throw new TesseraError("ERR_NODE_UNAVAILABLE", "replay cache full: too many requests inside the clock-skew window; retry later", {
        entriesMax: this.#entriesMax,
      });
    }
    this.#expiries.set(nonce, expiresAt);
    assert(this.#expiries.size <= this.#entriesMax, "nonce cache stays bounded");
  }

  #evict(now: number): void {
    for (const [nonce, expiresAt] of this.#expiries) {
      if (expiresAt >= now) return;
      this.#expiries.delete(nonce);
    }
  }
}

export interface VerifierOptions {
  readonly secret: ClusterSecret;
  /** This node's id: requests signed for another node are refused. */
  readonly nodeId: string;
  readonly clockSkewMsMax?: number;
  readonly nonceCache?: NonceCache;
  readonly now?: () => number;
}

/** Header values as node:http gives them. */
export type IncomingHeaders = Readonly<Record<string, string | string[] | undefined>>;

function singleHeader(headers: IncomingHeaders, name: string): string {
  const value = headers[name];
  if (typeof value !== "string" || value === "") throw unauthorized(`missing ${name} header`);
  return value;
}

/** Checks the auth headers of incoming requests for one node. */
export class RequestVerifier {
  readonly #secret: ClusterSecret;
  readonly #nodeId: string;
  readonly #skewMs: number;
  readonly #nonces: NonceCache;
  readonly #now: () => number;

  constructor(options: VerifierOptions) {
    const skewMs = options.clockSkewMsMax ?? AUTH_CLOCK_SKEW_MS_MAX;
    requireArgument(Number.isSafeInteger(skewMs) && skewMs > 0, "clockSkewMsMax", `must be a positive integer, got ${skewMs}`);
    this.#secret = options.secret;
    this.#nodeId = options.nodeId;
    this.#skewMs = skewMs;
    this.#nonces = options.nonceCache ?? new NonceCache();
    this.#now = options.now ?? Date.now;
  }

  /**
   * Throws ERR_UNAUTHORIZED unless the request carries a valid, fresh, unreplayed signature
   * for this node. Returns the signed content hash, which the caller must hold the body to.
   * The nonce is remembered only once the signature is valid, so forged requests cannot
   * fill the cache.
   */
  verify(method: string, pathAndQuery: string, headers: IncomingHeaders): string {
    const date = singleHeader(headers, AUTH_HEADERS.date);
    const nonce = singleHeader(headers, AUTH_HEADERS.nonce);
    const contentSha256 = singleHeader(headers, AUTH_HEADERS.contentSha256);
    const nodeId = singleHeader(headers, AUTH_HEADERS.node);
    const signature = singleHeader(headers, AUTH_HEADERS.signature);
    if (!DATE_PATTERN.test(date)) throw unauthorized(`malformed ${AUTH_HEADERS.date}`);
    if (!NONCE_PATTERN.test(nonce)) throw unauthorized(`malformed ${AUTH_HEADERS.nonce}`);
    if (contentSha256 !== UNSIGNED_STREAMING && !HEX_SHA256_PATTERN.test(contentSha256)) throw unauthorized(`malformed ${AUTH_HEADERS.contentSha256}`);
    if (!HEX_SHA256_PATTERN.test(signature)) throw unauthorized(`malformed ${AUTH_HEADERS.signature}`);
    const now = this.#now();
    const signedAt = Number(date);
    if (Math.abs(now - signedAt) > this.#skewMs) throw unauthorized(`date ${signedAt} is more than ${this.#skewMs} ms from the node's clock ${now}`);
    const contentLength = typeof headers["content-length"] === "string" ? headers["content-length"] : undefined;
    const expected = this.#secret.mac(canonicalString({ nodeId, method, pathAndQuery, contentSha256, contentLength }, date, nonce));
    // Both are 32 bytes (pattern-checked above), as timingSafeEqual requires.
    if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) throw unauthorized("signature does not match (wrong secret or altered request)");
    // Checked after the signature, so a stranger cannot probe node ids.
    if (nodeId !== this.#nodeId) throw unauthorized(`signed for node ${nodeId}, this is node ${this.#nodeId}`);
    this.#nonces.add(nonce, signedAt + this.#skewMs, now);
    return contentSha256;
  }

  /** The frame key of a record channel opened by a request that verify() accepted with `nonce`. */
  channelKey(nonce: string): Buffer {
    return channelKey(this.#secret, this.#nodeId, nonce);
  }
}

/**
 * The key of one record channel's request-frame MACs (core/record-channel.ts): derived from
 * the secret, the node and the nonce of the signed request that opened the channel, so every
 * channel has its own key and frames cannot be moved from one channel to another.
 */
export function channelKey(secret: ClusterSecret, nodeId: string, nonce: string): Buffer {
  return secret.mac(`TESSERA-RECORD-CHANNEL-V1\n${nodeId}\n${nonce}`);
}

/** Throws ERR_UNAUTHORIZED unless `body` hashes to the signed content hash. */
export function checkBodyHash(signedSha256: string, body: Uint8Array): void {
  if (signedSha256 === UNSIGNED_STREAMING) throw unauthorized("this request's body must be signed, not UNSIGNED-STREAMING");
  if (sha256Hex(body) !== signedSha256) throw unauthorized("body does not match its signed SHA-256");
}
