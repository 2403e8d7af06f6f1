/**
 * Operating errors shared by every layer. Each has a stable `code` (documented in
 * core/README.md, checked by test/core/errors.test.ts) so callers branch on the code,
 * never on the message. The gateway translates these to S3 errors in one place.
 */
export const ERROR_CODES = {
  ERR_INVALID_ARGUMENT: "A function or constructor was given a bad argument or option.",
  ERR_INVALID_CLUSTER_MAP: "The cluster map failed validation; the message names the problem.",
  ERR_CODEC_SELF_TEST: "The erasure codec disagrees with its golden vectors; the service refuses to start.",
  ERR_SHARD_HEADER: "A shard file's header is malformed, of an unknown version, or belongs to another object, version or shard index.",
  ERR_SHARD_CHECKSUM: "A chunk of a shard failed its checksum (bitrot or a torn write); `chunkIndex` names it.",
  ERR_SHARD_TRUNCATED: "A shard file or stream ended before its header said it would.",
  ERR_SHARD_TOO_LONG: "A shard stream carried more bytes than its header declared.",
  ERR_INCOMPLETE_BODY: "A request body ended before, or ran past, the length it declared.",
  ERR_WRITE_QUORUM: "Too few shards or records could be written to meet the write quorum; nothing was acknowledged.",
  ERR_READ_QUORUM: "Too few shards could be read to rebuild the data (more than m lost or unreachable).",
  ERR_NOT_FOUND: "The shard, record or bucket asked for does not exist.",
  ERR_VERSION_CONFLICT: "A conditional record write lost to a newer version already stored.",
  ERR_DISK_FAILED: "The disk is marked failed (vanished, read-only or I/O errors) and takes no writes.",
  ERR_INSUFFICIENT_STORAGE: "The disk has no room for the write; nothing partial was committed.",
  ERR_UNAUTHORIZED: "An internal request lacked valid proof of the cluster secret.",
  ERR_NODE_UNAVAILABLE: "A storage node could not be reached or timed out.",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class TesseraError extends Error {
  override readonly name = "TesseraError";
  readonly code: ErrorCode;
  /** Structured facts about the failure (which chunk, which disk, ...). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

export function isTesseraError(error: unknown, code?: ErrorCode): error is TesseraError {
  return error instanceof TesseraError && (code === undefined || error.code === code);
}

/** Throws ERR_INVALID_ARGUMENT naming the option when `condition` is false. */
export function requireArgument(condition: boolean, option: string, problem: string): asserts condition {
  if (!condition) throw new TesseraError("ERR_INVALID_ARGUMENT", `${option}: ${problem}`, { option });
}
