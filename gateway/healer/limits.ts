/**
 * Every size, count and timeout of the healer, each with what it costs. Defaults can be
 * overridden per gateway (TESSERA_HEAL_* variables, gateway/healer/settings.ts); tests use
 * short ones. Relations between limits are asserted at load.
 */
import { assert } from "../../core/assert.js";

const SECOND_MS = 1_000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const MiB = 1024 * 1024;

// --- Failure detection ------------------------------------------------------------------

/** How often every node's health is probed: one small request per node per interval. */
export const PROBE_INTERVAL_MS_DEFAULT = 2 * SECOND_MS;
/** A probe without an answer by then counts as missed (health is a stat per disk: fast). */
export const PROBE_TIMEOUT_MS_DEFAULT = 2 * SECOND_MS;
/**
 * A node with no good probe for this long is `suspect`: reads already route around it (the
 * decoder does that per request); nothing is rebuilt yet. About two missed probes.
 */
export const SUSPECT_AFTER_MS_DEFAULT = 5 * SECOND_MS;
/**
 * A node with no good probe for this long is `down`: its disks are out of the placement the
 * healer targets and their shards are rebuilt elsewhere. Shorter means a quicker return to
 * full redundancy; longer means a reboot or a brief partition costs no rebuild (a returning
 * node's valid shards are verified and reused, so a false alarm costs bandwidth, not data).
 */
export const DOWN_AFTER_MS_DEFAULT = 60 * SECOND_MS;

// --- Scanning ---------------------------------------------------------------------------

/** Every record is checked (records only, no shard reads) at least this often. */
export const SCAN_INTERVAL_MS_DEFAULT = DAY_MS;
/**
 * Every shard is read and its checksums verified within this period. The scrubber paces
 * itself to the period (cluster bytes / period), so a longer period means gentler reads.
 */
export const SCRUB_PERIOD_MS_DEFAULT = 7 * DAY_MS;
/** Records per listing page of one disk during a scan: one page per disk is held at a time. */
export const SCAN_PAGE_RECORDS = 500;
/** Scan progress is written to the nodes at most this often (each write: k + m small records). */
export const CHECKPOINT_INTERVAL_MS_DEFAULT = 5 * SECOND_MS;
/** How often the durable repair list (degraded reads, short writes) is read from the nodes. */
export const REPAIR_LIST_POLL_INTERVAL_MS_DEFAULT = 10 * SECOND_MS;
/** Repair-list entries taken per poll, so a flood of entries cannot starve a failure rebuild. */
export const REPAIR_LIST_ENTRIES_PER_POLL = 1_000;

// --- Repair -----------------------------------------------------------------------------

/**
 * Objects repaired at once. Declustered placement spreads a lost disk's shards over every
 * other disk, so parallel objects write to many disks at once; each costs about
 * (k + m) * 2 chunks of memory (at most 2 * 22 * 4 MiB at 16 MiB stripes).
 */
export const REBUILD_CONCURRENCY_DEFAULT = 8;
/** Most objects repaired at once whatever an operator sets (bounds memory, see above). */
export const REBUILD_CONCURRENCY_MAX = 256;
/**
 * Shard bytes per second the healer may read (rebuild sources, moves and scrubbing
 * together); 0 is unlimited. Unlimited by default: time at reduced redundancy is the
 * risk that matters most; operators lower it at run time if clients suffer.
 */
export const REBUILD_BANDWIDTH_BYTES_PER_SECOND_DEFAULT = 0;
/** Largest burst the bandwidth limit lets through at once: one stripe-sized read. */
export const THROTTLE_BURST_BYTES = 16 * MiB;
/**
 * Objects waiting in memory for repair, ordered by risk. Scans pause while it is full. Each
 * entry is small (bucket, key, spare count), so this is well under 10 MB.
 */
export const REPAIR_QUEUE_OBJECTS_MAX = 10_000;
/**
 * A version whose records sit on too few disks to have been acknowledged (a PUT that failed
 * or whose gateway died mid-commit) is garbage only after this long, so the healer never
 * races a commit in progress.
 */
export const PARTIAL_VERSION_GRACE_MS_DEFAULT = 15 * MINUTE_MS;
/** Rounds of "read the disks the records name" when gathering one object's records. */
export const RECORD_FOLLOW_ROUNDS_MAX = 3;
/**
 * A failure scan or rebalance that left objects degraded (a target disk refused a write, a
 * listing broke off) runs again after this pause, rather than waiting for the daily scan.
 */
export const RETRY_AFTER_MS_DEFAULT = 30 * SECOND_MS;
/** Window of the rebuild-rate average (MB/s and ETA): long enough to smooth object sizes. */
export const RATE_WINDOW_MS = 10 * SECOND_MS;
/** Idle time between scheduler passes when there is nothing to do. */
export const SCHEDULER_TICK_MS = 1 * SECOND_MS;
/** Records of one key read per disk: S3 keeps few versions of a key here (newest wins). */
export const RECORD_READ_TIMEOUT_MS = 5 * SECOND_MS;

assert(PROBE_TIMEOUT_MS_DEFAULT <= PROBE_INTERVAL_MS_DEFAULT, "a probe ends before the next starts");
assert(SUSPECT_AFTER_MS_DEFAULT > PROBE_INTERVAL_MS_DEFAULT, "one late probe does not make a node suspect");
assert(DOWN_AFTER_MS_DEFAULT > SUSPECT_AFTER_MS_DEFAULT, "a node is suspect before it is down");
assert(SCRUB_PERIOD_MS_DEFAULT >= SCAN_INTERVAL_MS_DEFAULT, "scrubbing (shard reads) is rarer than scanning (records)");
assert(REBUILD_CONCURRENCY_DEFAULT <= REBUILD_CONCURRENCY_MAX, "the default concurrency is allowed");
