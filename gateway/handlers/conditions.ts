/**
 * Conditional GET/HEAD (RFC 7232 as S3 applies it): If-Match and If-Unmodified-Since fail
 * with 412 PreconditionFailed; If-None-Match and If-Modified-Since with 304 Not Modified.
 * If-Match wins over If-Unmodified-Since, and If-None-Match over If-Modified-Since.
 */
import { S3Error } from "../s3/errors.js";
import { headerValue, type RequestHeaders } from "../s3/sigv4.js";

export interface Validators {
  readonly etag: string;
  /** Milliseconds since the epoch. */
  readonly lastModified: number;
}

function etagMatches(list: string, etag: string): boolean {
  return list.split(",").some((candidate) => {
    const trimmed = candidate.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
    return trimmed === "*" || trimmed === etag;
  });
}

/** HTTP dates have second precision; S3 compares at that precision. */
function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

function parseDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

export function evaluateConditions(headers: RequestHeaders, object: Validators): void {
  const ifMatch = headerValue(headers, "if-match");
  const ifNoneMatch = headerValue(headers, "if-none-match");
  const ifModifiedSince = parseDate(headerValue(headers, "if-modified-since"));
  const ifUnmodifiedSince = parseDate(headerValue(headers, "if-unmodified-since"));
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, object.etag)) throw new S3Error("PreconditionFailed", undefined, { extra: { Condition: "If-Match" } });
  } else if (ifUnmodifiedSince !== undefined && seconds(object.lastModified) > seconds(ifUnmodifiedSince)) {
    throw new S3Error("PreconditionFailed", undefined, { extra: { Condition: "If-Unmodified-Since" } });
  }
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, object.etag)) throw new S3Error("NotModified");
  } else if (ifModifiedSince !== undefined && seconds(object.lastModified) <= seconds(ifModifiedSince)) {
    throw new S3Error("NotModified");
  }
}
