/**
 * The HTTP Range header as S3 reads it: one range of `bytes=a-b`, `bytes=a-` or `bytes=-n`.
 * A header S3 would ignore (another unit, several ranges, garbage) means the whole object;
 * a well-formed range that starts past the end is InvalidRange (416).
 */
import { S3Error } from "../s3/errors.js";

/** [start, end): end exclusive. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

const SINGLE_RANGE = /^bytes=(\d*)-(\d*)$/;

export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = SINGLE_RANGE.exec(header.trim());
  if (match === null) return undefined;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return undefined;
  if (first === "") {
    // Suffix range: the last n bytes.
    const length = Number(last);
    if (!Number.isSafeInteger(length)) return undefined;
    if (length === 0 || size === 0) throw unsatisfiable(size);
    return { start: Math.max(0, size - length), end: size };
  }
  const start = Number(first);
  const endInclusive = last === "" ? size - 1 : Number(last);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(endInclusive)) return undefined;
  if (last !== "" && endInclusive < start) return undefined;
  if (start >= size) throw unsatisfiable(size);
  return { start, end: Math.min(endInclusive, size - 1) + 1 };
}

function unsatisfiable(size: number): S3Error {
  return new S3Error("InvalidRange", undefined, { extra: { ActualObjectSize: String(size) } });
}
