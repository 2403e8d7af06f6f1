/**
 * How small objects are stored: the size limits, apart from the code that uses them so that
 * settings (gateway/config.ts) can name them without loading the erasure codec.
 */

/**
 * Objects up to this size are stored inside their records (each record carries its own
 * disk's shard), so a small PUT is one LMDB write per node instead of a shard file plus a
 * record: 4+2 at 64 KiB puts about 16 KiB in each record.
 */
export const INLINE_OBJECT_BYTES_MAX = 64 * 1024;

/**
 * By default (--small-copies-bytes), small objects up to this size are stored as 1 + m copies (a code with k = 1, whose m
 * "parity" chunks are the data itself: core/codec.ts) in the records of the first 1 + m disks
 * of their placement, instead of k + m erasure-coded shards in the records of all k + m disks.
 * Any m disks may still be lost. On 4+2 a small PUT is 3 record writes instead of 6: a node's
 * record write costs it a few hundred microseconds of CPU whatever the record's size (the HTTP
 * exchange, the LMDB commit and its fsync), and those were most of a 4 KiB PUT's cost. Back
 * to back on this machine (PUT 4 KiB ×16): +8 to +30% PUT/s, node CPU per PUT -13 to -27%
 * (README, "Small objects as copies"). Reads still ask k disks' records, as for any object.
 *
 * The price is space: at 4 KiB the three records hold 18.5 KB (a whole copy each, base64 in
 * the record's JSON) against 13.0 KB for six records of 1 KiB shards, and each copy's record
 * is past LMDB's in-page limit (an 8 KiB overflow page). Below 2 KiB copies take less than
 * shards; past 4 KiB the space grows faster than the saved requests are worth.
 */
export const SMALL_COPIES_BYTES_DEFAULT = 4 * 1024;
