/**
 * Limits of the S3 protocol layer, each with what it costs or where it comes from.
 * Storage-wide limits (stripe sizes, object size) live in core/limits.ts.
 * Naming: qualifier last (KEY_BYTES_MAX).
 */
import { assert } from "../../core/assert.js";
import { OBJECT_KEY_BYTES_MAX, PART_NUMBER_MAX } from "../../core/limits.js";

const KiB = 1024;
const MiB = 1024 * KiB;

// --- Names ----------------------------------------------------------------------------

/** S3's ceiling on an object key, in UTF-8 bytes (core/limits.ts). Longer: KeyTooLongError. */
export const KEY_BYTES_MAX = OBJECT_KEY_BYTES_MAX;
/** S3's bucket name length bounds (characters, all ASCII). */
export const BUCKET_NAME_LENGTH_MIN = 3;
export const BUCKET_NAME_LENGTH_MAX = 63;

// --- Objects --------------------------------------------------------------------------

/** S3's ceiling on one PutObject body: 5 GiB (larger objects must use multipart). */
export const PUT_OBJECT_BYTES_MAX = 5 * 1024 * MiB;
/** S3's ceiling on a CopyObject source and on an UploadPartCopy range: 5 GiB (larger: multipart copy). */
export const COPY_SOURCE_BYTES_MAX = 5 * 1024 * MiB;
/** S3's ceiling on user metadata (x-amz-meta-* names and values, UTF-8): 2 KiB. */
export const USER_METADATA_BYTES_MAX = 2 * KiB;

// --- Listing counts (clamped, never rejected, as S3 and Garage do) ----------------------

/** Keys per ListObjects page: S3's default and ceiling; each costs a record read per shard node. */
export const LIST_KEYS_MAX = 1000;
/** Uploads per ListMultipartUploads page. */
export const LIST_UPLOADS_MAX = 1000;
/** Parts per ListParts page. */
export const LIST_PARTS_MAX = 1000;
/** Smallest page a client may ask for once clamped. */
export const LIST_PAGE_MIN = 1;

// --- Multipart ------------------------------------------------------------------------

/** S3's part numbers run 1..10000 (the ceiling is core/limits.ts's). */
export const PART_NUMBER_MIN = 1;
export { PART_NUMBER_MAX };
/** S3's smallest part but the last: 5 MiB (smaller is EntityTooSmall at completion). */
export const PART_BYTES_MIN = 5 * MiB;
/** S3's largest part: 5 GiB, as for a PutObject body. */
export const PART_BYTES_MAX = 5 * 1024 * MiB;

// --- Authentication -------------------------------------------------------------------

/** S3 rejects requests whose clock differs from the server's by more than 15 minutes. */
export const CLOCK_SKEW_MS_MAX = 15 * 60 * 1000;
/** Longest X-Amz-Expires S3 accepts on a presigned URL: 7 days. */
export const PRESIGNED_EXPIRES_SECONDS_MAX = 7 * 24 * 60 * 60;
/**
 * Derived signing keys kept (one per access key, day, region, service). Each costs four
 * HMACs to recompute and ~100 bytes to keep; 1024 covers many keys and regions per day.
 */
export const SIGNING_KEY_CACHE_ENTRIES_MAX = 1024;
/** Longest Authorization header parsed; real ones are ~250 bytes plus signed header names. */
export const AUTHORIZATION_HEADER_BYTES_MAX = 8 * KiB;

// --- aws-chunked bodies ---------------------------------------------------------------

/**
 * Largest signed chunk. A signed chunk is held in memory until its signature is checked,
 * so this bounds memory per upload; real clients use 8 KiB..1 MiB (MinIO allows 16 MiB).
 * Unsigned chunks stream through and are bounded only by the decoded length.
 */
export const AWS_CHUNK_SIGNED_BYTES_MAX = 16 * MiB;
/** Longest chunk-size line (`<hex>;chunk-signature=<64 hex>\r\n` is ~90 bytes). */
export const AWS_CHUNK_LINE_BYTES_MAX = 4 * KiB;
/** Longest trailer line (`x-amz-checksum-sha256:<44 base64>` is ~66 bytes). */
export const AWS_CHUNK_TRAILER_LINE_BYTES_MAX = 4 * KiB;
/** Trailer lines accepted: one checksum plus the trailer signature, with room to spare. */
export const AWS_CHUNK_TRAILERS_MAX = 8;

// --- XML request bodies ---------------------------------------------------------------

/** DeleteObjects keys per request: S3's ceiling. */
export const DELETE_OBJECTS_KEYS_MAX = 1000;
/** A Delete body: 1000 keys of up to 1024 bytes, escaped, plus version ids and tags. */
export const DELETE_XML_BYTES_MAX = 2 * MiB;
/** A CompleteMultipartUpload body: 10000 parts of ~200 bytes (number, ETag, checksum). */
export const COMPLETE_XML_BYTES_MAX = 4 * MiB;
/** A CreateBucketConfiguration body: a location constraint and little else. */
export const CREATE_BUCKET_XML_BYTES_MAX = 64 * KiB;

assert(LIST_PAGE_MIN >= 1 && LIST_PAGE_MIN <= LIST_KEYS_MAX, "a clamped page holds at least one entry");
assert(BUCKET_NAME_LENGTH_MIN <= BUCKET_NAME_LENGTH_MAX, "bucket name bounds ordered");
assert(DELETE_XML_BYTES_MAX >= DELETE_OBJECTS_KEYS_MAX * KEY_BYTES_MAX, "a full Delete body fits");
assert(PART_BYTES_MIN <= PART_BYTES_MAX && PART_BYTES_MAX <= PUT_OBJECT_BYTES_MAX, "part sizes ordered, a part no larger than an object");
assert(COMPLETE_XML_BYTES_MAX >= PART_NUMBER_MAX * 200, "a full CompleteMultipartUpload body fits");
assert(AWS_CHUNK_LINE_BYTES_MAX >= 128, "a signed chunk-size line fits");
