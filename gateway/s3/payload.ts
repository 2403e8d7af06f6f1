/**
 * The body pipeline a verified request needs, chosen in one place from its payload mode and
 * headers: a SHA-256 check for a signed hash, the aws-chunked decoder for streaming modes,
 * and a checksum check for an x-amz-checksum-* header. The returned body yields the decoded
 * bytes and errors (with an S3Error) instead of ending when anything fails to verify.
 */
import { finished } from "node:stream/promises";
import { pipeline, type Readable } from "node:stream";
import { assert } from "../../core/assert.js";
import { AwsChunkedDecoder } from "./aws-chunked.js";
import { type ChecksumAlgorithm, ChecksumVerifier, checksumHeaderName, CHECKSUM_ALGORITHMS, parseChecksumValue } from "./checksums.js";
import { S3Error } from "./errors.js";
import { type Authenticated, headerValue, PayloadSha256Verifier, type RequestHeaders } from "./sigv4.js";

export interface VerifiedChecksum {
  algorithm: ChecksumAlgorithm;
  /** Base64, as the client sent it and as S3 returns it. */
  value: string;
}

export interface OpenedPayload {
  /** The decoded body. Consumers must commit only after it ends without error. */
  body: Readable;
  /** Decoded length when the client declared one (x-amz-decoded-content-length or Content-Length). */
  length: number | undefined;
  /** After the body ends: the checksum the client sent (header or trailer), verified. */
  checksum: Promise<VerifiedChecksum | undefined>;
}

const DECIMAL = /^\d{1,16}$/;

function parseLength(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!DECIMAL.test(value.trim()) || !Number.isSafeInteger(Number(value))) throw new S3Error("InvalidArgument", `${name} must be a non-negative integer.`);
  return Number(value);
}

/** The one x-amz-checksum-<algorithm> header the client sent, validated; two is an error. */
export function headerChecksum(headers: RequestHeaders): VerifiedChecksum | undefined {
  const sent = CHECKSUM_ALGORITHMS.flatMap((algorithm) => {
    const value = headerValue(headers, checksumHeaderName(algorithm));
    return value === undefined ? [] : [{ algorithm, value: value.trim() }];
  });
  if (sent.length > 1) throw new S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
  const [checksum] = sent;
  if (checksum !== undefined) parseChecksumValue(checksum.algorithm, checksum.value);
  return checksum;
}

/** Names in x-amz-trailer, lower-case. */
export function declaredTrailers(headers: RequestHeaders): string[] {
  const value = headerValue(headers, "x-amz-trailer");
  if (value === undefined) return [];
  return value.split(",").map((name) => name.trim().toLowerCase()).filter((name) => name !== "");
}

/** Content-Encoding to store: aws-chunked is transport framing, never part of the object. */
export function storedContentEncoding(headers: RequestHeaders): string | undefined {
  const value = headerValue(headers, "content-encoding");
  if (value === undefined) return undefined;
  const kept = value.split(",").map((one) => one.trim()).filter((one) => one !== "" && one.toLowerCase() !== "aws-chunked");
  return kept.length === 0 ? undefined : kept.join(",");
}

function settle<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** Wraps `source` (the raw request stream) in the checks `auth.payload` and the headers call for. */
export function openPayload(source: Readable, auth: Authenticated, headers: RequestHeaders): OpenedPayload {
  const fromHeader = headerChecksum(headers);
  const trailers = declaredTrailers(headers);
  let body: Readable;
  let length: number | undefined;
  let trailerChecksum: Promise<VerifiedChecksum | undefined> | undefined;
  const payload = auth.payload;
  if (payload.kind === "streaming") {
    length = parseLength(headerValue(headers, "x-amz-decoded-content-length"), "x-amz-decoded-content-length");
    if (length === undefined) throw new S3Error("MissingContentLength", "You must provide the x-amz-decoded-content-length header with aws-chunked payloads.");
    if (!payload.trailer && trailers.length > 0) throw new S3Error("InvalidRequest", "x-amz-trailer needs a STREAMING-…-TRAILER payload.");
    // Only version 4 declares a streaming payload (version 2 URLs are unsigned payloads).
    assert(!payload.signed || auth.signing !== undefined, "a signed streaming payload comes with its version 4 signing context");
    const signing = payload.signed ? auth.signing : undefined;
    const decoder = new AwsChunkedDecoder({ decodedLength: length, signing, trailer: payload.trailer, declaredTrailers: trailers });
    body = pipeline(source, decoder, () => undefined);
    trailerChecksum = settle(decoder.trailers.then((received) => received.checksum));
  } else {
    if (trailers.length > 0) throw new S3Error("InvalidRequest", "x-amz-trailer needs a STREAMING-…-TRAILER payload.");
    length = parseLength(headerValue(headers, "content-length"), "Content-Length");
    body = payload.kind === "sha256" ? pipeline(source, new PayloadSha256Verifier(payload.sha256), () => undefined) : source;
  }
  if (fromHeader !== undefined) {
    body = pipeline(body, new ChecksumVerifier(fromHeader.algorithm, () => fromHeader.value), () => undefined);
  }
  const fromTrailer = trailerChecksum;
  const checksum = finished(body).then(async () => (fromTrailer === undefined ? fromHeader : ((await fromTrailer) ?? fromHeader)));
  return { body, length, checksum: settle(checksum) };
}
