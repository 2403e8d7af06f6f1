/**
 * AWS Signature Version 4 verification for S3: the Authorization header and presigned URLs,
 * canonical requests exactly as AWS builds them for S3 (path segments encoded once, never
 * normalised), clock skew and expiry, and the x-amz-content-sha256 payload modes. The body
 * itself is checked downstream: PayloadSha256Verifier for a hex hash, aws-chunked.ts for
 * streaming payloads (which reuse the signing key and seed signature returned here).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { requireArgument } from "../../core/errors.js";
import { S3Error } from "./errors.js";
import { isPresignedV2, verifyPresignedV2 } from "./sigv2.js";
import {
  AUTHORIZATION_HEADER_BYTES_MAX,
  CLOCK_SKEW_MS_MAX,
  PRESIGNED_EXPIRES_SECONDS_MAX,
  SIGNING_KEY_CACHE_ENTRIES_MAX,
} from "./limits.js";

export const SIGV4_ALGORITHM = "AWS4-HMAC-SHA256";
export const SIGV4A_ALGORITHM = "AWS4-ECDSA-P256-SHA256";
export const SERVICE = "s3";
export const SCOPE_TERMINATOR = "aws4_request";
/** SHA-256 of the empty string, hex: the payload hash of a bodiless request. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export const PAYLOAD_UNSIGNED = "UNSIGNED-PAYLOAD";
export const PAYLOAD_STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
export const PAYLOAD_STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
export const PAYLOAD_STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const PAYLOAD_STREAMING_ECDSA = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
const PAYLOAD_STREAMING_ECDSA_TRAILER = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER";

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;
const HEX_SIGNATURE = /^[0-9a-f]{64}$/;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const SHA256_MODES_MESSAGE =
  "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, " +
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, " +
  "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.";
const PRESIGNED_REQUIRED_MESSAGE =
  "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, " +
  "X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";
const CREDENTIAL_FORMAT = 'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".';

// --- Types ----------------------------------------------------------------------------

/** Request headers by lower-case name; repeated headers as arrays (see headersFromRaw). */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface SignedRequest {
  method: string;
  /** The path exactly as received, still percent-encoded, without the query. */
  path: string;
  /** The raw query string as received, without the leading '?'. */
  query: string;
  headers: RequestHeaders;
  /** The bucket named by the Host header (virtual-hosted addressing): version 2 signs it. */
  hostBucket?: string;
}

/** Access key → secret. Lookups are per request, so a store may change under a running gateway. */
export interface Credentials {
  secretKey(accessKeyId: string): string | undefined;
}

export interface AccessKeyPair {
  accessKeyId: string;
  secretAccessKey: string;
}

/** How the body is protected, from x-amz-content-sha256 (UNSIGNED-PAYLOAD for presigned URLs). */
export type PayloadMode =
  | { kind: "unsigned" }
  | { kind: "sha256"; sha256: string }
  | { kind: "streaming"; signed: boolean; trailer: boolean };

/** What aws-chunked.ts needs to check chunk and trailer signatures. */
export interface SigningContext {
  signingKey: Buffer;
  amzDate: string;
  /** `YYYYMMDD/region/s3/aws4_request`. */
  scope: string;
  /** The request's own signature: the "previous signature" of the first chunk. */
  seedSignature: string;
}

export interface Authenticated {
  accessKeyId: string;
  /** presigned-v2: a Signature Version 2 presigned URL (sigv2.ts), when the verifier allows them. */
  mechanism: "header" | "presigned" | "presigned-v2";
  /** The region the client signed for; undefined for version 2, which names none. */
  region: string | undefined;
  /** Lower-case names the client signed. */
  signedHeaders: readonly string[];
  payload: PayloadMode;
  /** Version 4 only (a signed streaming payload's chunk signatures chain from it). */
  signing: SigningContext | undefined;
}

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string;
}

// --- Small helpers --------------------------------------------------------------------

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function hmacSha256(key: string | Uint8Array, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
export function deriveSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  const dateKey = hmacSha256(`AWS4${secret}`, date);
  const regionKey = hmacSha256(dateKey, region);
  const serviceKey = hmacSha256(regionKey, service);
  return hmacSha256(serviceKey, SCOPE_TERMINATOR);
}

/** Constant-time comparison of two lower-case hex signatures. */
export function signaturesEqual(expected: string, provided: string): boolean {
  if (!HEX_SIGNATURE.test(provided) || provided.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(expected, "latin1"), Buffer.from(provided, "latin1"));
}

/** A Credentials store over fixed pairs, validated (ERR_INVALID_ARGUMENT names the bad one). */
export function staticCredentials(pairs: readonly AccessKeyPair[]): Credentials {
  requireArgument(pairs.length > 0, "credentials", "at least one access key is required");
  const secrets = new Map<string, string>();
  for (const [index, pair] of pairs.entries()) {
    requireArgument(/^[\x21-\x7e]+$/.test(pair.accessKeyId) && !pair.accessKeyId.includes("/"), `credentials[${index}].accessKeyId`, "must be printable ASCII without '/' or spaces");
    requireArgument(pair.secretAccessKey.length > 0, `credentials[${index}].secretAccessKey`, "must not be empty");
    requireArgument(!secrets.has(pair.accessKeyId), `credentials[${index}].accessKeyId`, `duplicate access key ${pair.accessKeyId}`);
    secrets.set(pair.accessKeyId, pair.secretAccessKey);
  }
  return { secretKey: (accessKeyId) => secrets.get(accessKeyId) };
}

/** Builds RequestHeaders from Node's rawHeaders, keeping repeated headers apart (AWS joins them with ','). */
export function headersFromRaw(rawHeaders: readonly string[]): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const value = rawHeaders[i + 1] as string;
    const existing = headers[name];
    if (existing === undefined) headers[name] = [value];
    else existing.push(value);
  }
  return headers;
}

/** One header's value, repeated values joined with ','; undefined when absent. */
export function headerValue(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : value.join(",");
}

// --- URI encoding ---------------------------------------------------------------------

/** AWS's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex). */
export function awsUriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decodeUriPart(encoded: string, plusIsSpace: boolean): string {
  try {
    return decodeURIComponent(plusIsSpace ? encoded.replace(/\+/g, " ") : encoded);
  } catch {
    throw new S3Error("InvalidURI");
  }
}

/** The canonical URI: each '/'-separated segment decoded once and re-encoded; S3 never normalises. */
export function canonicalUri(rawPath: string): string {
  const path = rawPath === "" ? "/" : rawPath;
  return path
    .split("/")
    .map((segment) => awsUriEncode(decodeUriPart(segment, false)))
    .join("/");
}

/** Decoded query pairs in order; `a` alone gives value "" ('+' is a space, as in forms). */
export function parseQueryPairs(rawQuery: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const piece of rawQuery.split("&")) {
    if (piece === "") continue;
    const equals = piece.indexOf("=");
    const name = equals === -1 ? piece : piece.slice(0, equals);
    const value = equals === -1 ? "" : piece.slice(equals + 1);
    pairs.push([decodeUriPart(name, true), decodeUriPart(value, true)]);
  }
  return pairs;
}

/** The canonical query string: names and values AWS-encoded, sorted by name then value. */
export function canonicalQuery(pairs: ReadonlyArray<readonly [string, string]>, exclude?: string): string {
  return pairs
    .filter(([name]) => name !== exclude)
    .map(([name, value]) => [awsUriEncode(name), awsUriEncode(value)] as const)
    .sort(([nameA, valueA], [nameB, valueB]) => compareStrings(nameA, nameB) || compareStrings(valueA, valueB))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
}

/** Code-unit order, as AWS sorts canonical names. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `name:value\n` per signed header: values trimmed, runs of spaces folded, repeats joined with ','. */
export function canonicalHeaders(headers: RequestHeaders, signedHeaders: readonly string[]): string {
  let out = "";
  for (const name of signedHeaders) {
    const value = headers[name];
    const values = value === undefined ? [] : typeof value === "string" ? [value] : value;
    out += `${name}:${values.map((one) => one.trim().replace(/\s+/g, " ")).join(",")}\n`;
  }
  return out;
}

export function canonicalRequest(
  request: SignedRequest,
  query: string,
  signedHeaders: readonly string[],
  payloadHash: string,
): string {
  return [
    request.method.toUpperCase(),
    canonicalUri(request.path),
    query,
    canonicalHeaders(request.headers, signedHeaders),
    signedHeaders.join(";"),
    payloadHash,
  ].join("\n");
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return `${SIGV4_ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
}

/** Milliseconds since the epoch of an ISO 8601 basic timestamp (20130524T000000Z), or undefined. */
export function parseAmzDate(value: string): number | undefined {
  const match = AMZ_DATE.exec(value);
  if (match === null) return undefined;
  const [, year, month, day, hour, minute, second] = match.map(Number) as [number, number, number, number, number, number, number];
  const time = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(time);
  // Reject 20130231T... and friends, which Date.UTC would roll over.
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month - 1 || check.getUTCHours() !== hour) return undefined;
  return time;
}

export function formatAmzDate(time: number): string {
  return new Date(time).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

// --- Parsing the two mechanisms -------------------------------------------------------

function malformedHeader(detail: string): S3Error {
  return new S3Error("AuthorizationHeaderMalformed", `The authorization header is malformed; ${detail}`);
}

function malformedQuery(detail: string): S3Error {
  return new S3Error("AuthorizationQueryParametersError", detail);
}

interface Scope {
  accessKeyId: string;
  date: string;
  region: string;
}

/** `AKID/YYYYMMDD/region/s3/aws4_request`; `fail` builds the mechanism's own error. */
function parseCredential(credential: string, fail: (detail: string) => S3Error): Scope {
  const parts = credential.split("/");
  const [accessKeyId, date, region, service, terminator] = parts;
  if (parts.length !== 5 || !accessKeyId || !date || !region || service === undefined || terminator === undefined) {
    throw fail(`the Credential is mal-formed; ${CREDENTIAL_FORMAT}`);
  }
  if (!/^\d{8}$/.test(date)) throw fail(`incorrect date format "${date}". This date in the credential must be in the format "yyyyMMdd".`);
  if (service !== SERVICE) throw fail(`incorrect service "${service}". This endpoint belongs to "${SERVICE}".`);
  if (terminator !== SCOPE_TERMINATOR) throw fail(`incorrect terminal "${terminator}". This endpoint uses "${SCOPE_TERMINATOR}".`);
  return { accessKeyId, date, region };
}

function parseSignedHeaders(list: string, fail: (detail: string) => S3Error): string[] {
  const names = list.split(";");
  if (names.some((name) => !HEADER_NAME.test(name))) throw fail("the SignedHeaders are mal-formed.");
  if (!names.includes("host")) throw fail("the SignedHeaders must include host.");
  return names;
}

/** `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` */
export function parseAuthorizationHeader(header: string, headers: RequestHeaders): ParsedAuthorization {
  if (header.length > AUTHORIZATION_HEADER_BYTES_MAX) throw malformedHeader("it is too long.");
  const space = header.indexOf(" ");
  const algorithm = space === -1 ? header : header.slice(0, space);
  if (algorithm !== SIGV4_ALGORITHM) {
    if (algorithm === SIGV4A_ALGORITHM) throw new S3Error("NotImplemented", "Signature Version 4A is not implemented.");
    throw new S3Error("InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.");
  }
  const fields = new Map<string, string>();
  for (const field of header.slice(space + 1).split(",")) {
    const trimmed = field.trim();
    const equals = trimmed.indexOf("=");
    if (equals <= 0) throw malformedHeader(`the field "${trimmed}" is not of the form name=value.`);
    fields.set(trimmed.slice(0, equals), trimmed.slice(equals + 1));
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (credential === undefined || signedHeaders === undefined || signature === undefined) {
    throw malformedHeader("it must contain Credential, SignedHeaders and Signature.");
  }
  const scope = parseCredential(credential, malformedHeader);
  const amzDate = requestAmzDate(headers);
  if (amzDate.slice(0, 8) !== scope.date) {
    throw malformedHeader(`Invalid credential date "${scope.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  }
  return { ...scope, signedHeaders: parseSignedHeaders(signedHeaders, malformedHeader), signature, amzDate };
}

/** x-amz-date, else the Date header converted to the same basic format. */
function requestAmzDate(headers: RequestHeaders): string {
  const amzDate = headerValue(headers, "x-amz-date");
  if (amzDate !== undefined) {
    if (parseAmzDate(amzDate) === undefined) throw new S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
    return amzDate;
  }
  const date = headerValue(headers, "date");
  const time = date === undefined ? Number.NaN : Date.parse(date);
  if (Number.isNaN(time)) throw new S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
  return formatAmzDate(time);
}

interface ParsedPresigned extends ParsedAuthorization {
  expiresSeconds: number;
}

const PRESIGNED_PARAMS = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires", "X-Amz-Signature"] as const;

export function parsePresignedQuery(pairs: ReadonlyArray<readonly [string, string]>): ParsedPresigned {
  const params = new Map<string, string>();
  for (const [name, value] of pairs) if ((PRESIGNED_PARAMS as readonly string[]).includes(name)) params.set(name, value);
  const [algorithm, credential, amzDate, signedHeaders, expires, signature] = PRESIGNED_PARAMS.map((name) => params.get(name));
  if (algorithm === undefined || credential === undefined || amzDate === undefined || signedHeaders === undefined || expires === undefined || signature === undefined) {
    throw malformedQuery(PRESIGNED_REQUIRED_MESSAGE);
  }
  if (algorithm !== SIGV4_ALGORITHM) throw malformedQuery("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  const scope = parseCredential(credential, (detail) => malformedQuery(`Error parsing the X-Amz-Credential parameter; ${detail}`));
  if (parseAmzDate(amzDate) === undefined) throw malformedQuery("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  if (amzDate.slice(0, 8) !== scope.date) throw malformedQuery(`Invalid credential date "${scope.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  if (!/^\d{1,7}$/.test(expires)) throw malformedQuery("X-Amz-Expires should be a number");
  const expiresSeconds = Number(expires);
  if (expiresSeconds > PRESIGNED_EXPIRES_SECONDS_MAX) {
    throw malformedQuery(`X-Amz-Expires must be less than a week (in seconds) that is; ${PRESIGNED_EXPIRES_SECONDS_MAX} seconds`);
  }
  const fail = (detail: string): S3Error => malformedQuery(`Error parsing the X-Amz-SignedHeaders parameter; ${detail}`);
  return { ...scope, amzDate, signature, expiresSeconds, signedHeaders: parseSignedHeaders(signedHeaders, fail) };
}

/** The payload mode a client declared in x-amz-content-sha256. */
export function parsePayloadMode(value: string): PayloadMode {
  switch (value) {
    case PAYLOAD_UNSIGNED:
      return { kind: "unsigned" };
    case PAYLOAD_STREAMING_SIGNED:
      return { kind: "streaming", signed: true, trailer: false };
    case PAYLOAD_STREAMING_SIGNED_TRAILER:
      return { kind: "streaming", signed: true, trailer: true };
    case PAYLOAD_STREAMING_UNSIGNED_TRAILER:
      return { kind: "streaming", signed: false, trailer: true };
    case PAYLOAD_STREAMING_ECDSA:
    case PAYLOAD_STREAMING_ECDSA_TRAILER:
      throw new S3Error("NotImplemented", "Signature Version 4A (ECDSA) streaming payloads are not implemented.");
  }
  if (!HEX_SHA256.test(value)) throw new S3Error("InvalidArgument", SHA256_MODES_MESSAGE);
  return { kind: "sha256", sha256: value.toLowerCase() };
}

// --- Verification ---------------------------------------------------------------------

export interface SigV4VerifierOptions {
  credentials: Credentials;
  /** The server clock in epoch milliseconds; tests pass a fixed one. */
  now?: () => number;
  /**
   * Accept Signature Version 2 presigned URLs (sigv2.ts): the S3 API does, for the aws CLI v1
   * and boto3, which presign that way by default; the admin API does not.
   */
  presignedV2?: boolean;
}

interface CachedKey {
  secret: string;
  key: Buffer;
}

/**
 * Verifies a request's SigV4 signature and returns who signed it and how the body is
 * protected, or throws the S3Error a client expects (AccessDenied when unsigned,
 * InvalidAccessKeyId, SignatureDoesNotMatch, RequestTimeTooSkewed, ...).
 */
export class SigV4Verifier {
  readonly #credentials: Credentials;
  readonly #now: () => number;
  readonly #keys = new Map<string, CachedKey>();
  readonly #presignedV2: boolean;

  constructor(options: SigV4VerifierOptions) {
    requireArgument(typeof options.credentials?.secretKey === "function", "credentials", "must have a secretKey(accessKeyId) method");
    this.#credentials = options.credentials;
    this.#now = options.now ?? Date.now;
    this.#presignedV2 = options.presignedV2 === true;
  }

  verify(request: SignedRequest): Authenticated {
    const authorization = headerValue(request.headers, "authorization");
    const pairs = parseQueryPairs(request.query);
    const presigned = pairs.some(([name]) => name === "X-Amz-Algorithm");
    if (authorization !== undefined && presigned) {
      throw new S3Error("InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified");
    }
    if (authorization !== undefined) return this.#verifyHeader(request, authorization, pairs);
    if (presigned) return this.#verifyPresigned(request, pairs);
    if (isPresignedV2(pairs)) {
      // Where version 2 is not accepted, say so: the URL is signed, only not with version 4.
      if (!this.#presignedV2) throw new S3Error("InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256 (this URL is presigned with Signature Version 2).");
      const accessKeyId = verifyPresignedV2(request, pairs, (key) => this.#credentials.secretKey(key), this.#now());
      return { accessKeyId, mechanism: "presigned-v2", region: undefined, signedHeaders: [], payload: { kind: "unsigned" }, signing: undefined };
    }
    throw new S3Error("AccessDenied", "Anonymous access is not allowed; sign the request with AWS Signature Version 4.");
  }

  #verifyHeader(request: SignedRequest, authorization: string, pairs: Array<[string, string]>): Authenticated {
    const parsed = parseAuthorizationHeader(authorization, request.headers);
    this.#checkSkew(parsed.amzDate);
    const declared = headerValue(request.headers, "x-amz-content-sha256");
    if (declared === undefined) throw new S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
    const payload = parsePayloadMode(declared);
    const signing = this.#check(request, parsed, canonicalQuery(pairs), declared);
    return { accessKeyId: parsed.accessKeyId, mechanism: "header", region: parsed.region, signedHeaders: parsed.signedHeaders, payload, signing };
  }

  #verifyPresigned(request: SignedRequest, pairs: Array<[string, string]>): Authenticated {
    const parsed = parsePresignedQuery(pairs);
    const signedAt = parseAmzDate(parsed.amzDate) as number;
    const now = this.#now();
    if (signedAt - now > CLOCK_SKEW_MS_MAX) throw new S3Error("AccessDenied", "Request is not valid yet");
    const expiresAt = signedAt + parsed.expiresSeconds * 1000;
    if (now > expiresAt) {
      const extra = { "X-Amz-Expires": String(parsed.expiresSeconds), Expires: new Date(expiresAt).toISOString(), ServerTime: new Date(now).toISOString() };
      throw new S3Error("AccessDenied", "Request has expired", { extra });
    }
    const fromHeader = parsed.signedHeaders.includes("x-amz-content-sha256") ? headerValue(request.headers, "x-amz-content-sha256") : undefined;
    const fromQuery = pairs.find(([name]) => name.toLowerCase() === "x-amz-content-sha256")?.[1];
    const declared = fromHeader ?? fromQuery ?? PAYLOAD_UNSIGNED;
    const payload = parsePayloadMode(declared);
    const signing = this.#check(request, parsed, canonicalQuery(pairs, "X-Amz-Signature"), declared);
    return { accessKeyId: parsed.accessKeyId, mechanism: "presigned", region: parsed.region, signedHeaders: parsed.signedHeaders, payload, signing };
  }

  #checkSkew(amzDate: string): void {
    const requestTime = parseAmzDate(amzDate) as number;
    const now = this.#now();
    if (Math.abs(now - requestTime) <= CLOCK_SKEW_MS_MAX) return;
    const extra = { RequestTime: amzDate, ServerTime: new Date(now).toISOString(), MaxAllowedSkewMilliseconds: String(CLOCK_SKEW_MS_MAX) };
    throw new S3Error("RequestTimeTooSkewed", undefined, { extra });
  }

  /** Looks up the key, rejects unsigned x-amz-* headers, and compares signatures. */
  #check(request: SignedRequest, parsed: ParsedAuthorization, query: string, payloadHash: string): SigningContext {
    const secret = this.#credentials.secretKey(parsed.accessKeyId);
    if (secret === undefined) throw new S3Error("InvalidAccessKeyId", undefined, { extra: { AWSAccessKeyId: parsed.accessKeyId } });
    const unsigned = Object.keys(request.headers).filter(
      (name) => name.startsWith("x-amz-") && request.headers[name] !== undefined && !parsed.signedHeaders.includes(name),
    );
    if (unsigned.length > 0) {
      throw new S3Error("AccessDenied", "There were headers present in the request which were not signed", { extra: { HeadersNotSigned: unsigned.join(", ") } });
    }
    const scope = `${parsed.date}/${parsed.region}/${SERVICE}/${SCOPE_TERMINATOR}`;
    const canonical = canonicalRequest(request, query, parsed.signedHeaders, payloadHash);
    const toSign = stringToSign(parsed.amzDate, scope, canonical);
    const signingKey = this.signingKey(parsed.accessKeyId, secret, parsed.date, parsed.region);
    const expected = createHmac("sha256", signingKey).update(toSign, "utf8").digest("hex");
    if (!signaturesEqual(expected, parsed.signature)) {
      const extra = { AWSAccessKeyId: parsed.accessKeyId, StringToSign: toSign, SignatureProvided: parsed.signature, CanonicalRequest: canonical };
      throw new S3Error("SignatureDoesNotMatch", undefined, { extra });
    }
    return { signingKey, amzDate: parsed.amzDate, scope, seedSignature: expected };
  }

  /** The derived key for (access key, date, region, s3), cached; a changed secret misses the cache. */
  signingKey(accessKeyId: string, secret: string, date: string, region: string): Buffer {
    const cacheKey = `${accessKeyId}/${date}/${region}/${SERVICE}`;
    const cached = this.#keys.get(cacheKey);
    if (cached !== undefined && cached.secret === secret) return cached.key;
    const key = deriveSigningKey(secret, date, region, SERVICE);
    this.#keys.delete(cacheKey);
    if (this.#keys.size >= SIGNING_KEY_CACHE_ENTRIES_MAX) {
      const oldest = this.#keys.keys().next().value;
      if (oldest !== undefined) this.#keys.delete(oldest);
    }
    this.#keys.set(cacheKey, { secret, key });
    return key;
  }

  /** Entries in the signing-key cache (for tests and metrics). */
  get cachedSigningKeys(): number {
    return this.#keys.size;
  }
}

// --- Signed payload hash --------------------------------------------------------------

/**
 * Passes the body through while hashing it; at the end, a hash different from the client's
 * x-amz-content-sha256 fails the stream with XAmzContentSHA256Mismatch, so a consumer that
 * commits only on 'end' never stores a body the client did not sign.
 */
export class PayloadSha256Verifier extends Transform {
  readonly #expected: string;
  readonly #hash = createHash("sha256");

  constructor(expectedHex: string) {
    super();
    requireArgument(HEX_SHA256.test(expectedHex), "expectedHex", "must be 64 hex digits");
    this.#expected = expectedHex.toLowerCase();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const computed = this.#hash.digest("hex");
    if (computed === this.#expected) return callback();
    const extra = { ClientComputedContentSHA256: this.#expected, S3ComputedContentSHA256: computed };
    callback(new S3Error("XAmzContentSHA256Mismatch", undefined, { extra }));
  }
}
