/**
 * The per-key lock of conditional writes and multipart completion (docs/conditional-writes.md):
 * a lease on each of the key's k + m disks, held once a lease quorum granted it. The quorum
 * is a majority (two holders cannot both have one) and at least the write quorum (the holder
 * commits its record only to disks it holds a lease on, with the grant as fencing token, so a
 * holder whose lease was taken over cannot reach the write quorum).
 *
 * Acquisition never blocks on a node: every disk answers at once, and a holder short of the
 * quorum releases what it got and retries after a jittered, growing pause, up to a deadline.
 */
import { randomBytes, randomInt } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { assert } from "../../core/assert.js";
import { TesseraError } from "../../core/errors.js";
import type { LeaseFence, ShardLocation } from "../../core/storage-api.js";
import type { Cluster } from "./cluster.js";
import { diskKey, writeQuorum } from "./put-object.js";
import { withTimeout } from "./versions.js";

/**
 * How long a lease runs. It covers a record read and a record write (milliseconds); a
 * gateway that dies holding it blocks the key's conditional writes this long at most.
 * Must stay under the node's LEASE_TTL_MS_MAX (60 s).
 */
export const LEASE_TTL_MS = 10_000;
/**
 * How long a conditional write keeps trying for the lock before answering
 * ConditionalRequestConflict. Twenty writers queued on one key each hold it a few ms; a
 * dead holder's lease lapses after LEASE_TTL_MS, so waiting longer than that covers it.
 */
export const LEASE_ACQUIRE_WAIT_MS = 15_000;
/** First retry pause (upper bound of its jitter); doubles per attempt up to the max. */
export const LEASE_RETRY_FIRST_MS = 4;
/** Longest retry pause: keeps a waiting writer responsive once the key frees up. */
export const LEASE_RETRY_MAX_MS = 200;
/** One lease call per disk: an answer is a memory lookup; silence means the node is out. */
export const LEASE_CALL_TIMEOUT_MS = 5_000;
/** Bytes of a holder id: unique per acquisition attempt. */
const HOLDER_ID_BYTES = 16;

assert(LEASE_ACQUIRE_WAIT_MS > LEASE_TTL_MS, "a writer waits out a dead holder's lease");
assert(LEASE_RETRY_FIRST_MS >= 1 && LEASE_RETRY_FIRST_MS <= LEASE_RETRY_MAX_MS, "retry pauses ordered");

export interface KeyLock {
  /** Lease grants by "node/disk": pass to commitRecords as `fences`. */
  readonly fences: ReadonlyMap<string, LeaseFence>;
}

/** Leases a majority and at least the write quorum of the k + m disks of a key. */
export function leaseQuorum(k: number, m: number): number {
  return Math.max(writeQuorum(k, m), Math.floor((k + m) / 2) + 1);
}

interface Attempt {
  readonly granted: Map<string, LeaseFence>;
  /** Disks that answered but hold another writer's lease. */
  readonly busy: number;
}

async function tryAcquire(cluster: Cluster, bucket: string, key: string, locations: readonly ShardLocation[], ttlMs: number): Promise<Attempt> {
  const holder = randomBytes(HOLDER_ID_BYTES).toString("hex");
  const granted = new Map<string, LeaseFence>();
  let busy = 0;
  await Promise.all(
    locations.map(async (location) => {
      const node = cluster.node(location.nodeId);
      if (node === undefined) return;
      try {
        const grant = await withTimeout(node.acquireLease(location.diskId, { bucket, key, holder, ttlMs }), LEASE_CALL_TIMEOUT_MS, `lease on ${diskKey(location)}`);
        if (grant.granted) granted.set(diskKey(location), { holder, token: grant.token });
        else busy += 1;
      } catch {
        // An unreachable disk is neither granted nor busy.
      }
    }),
  );
  return { granted, busy };
}

async function releaseAll(cluster: Cluster, bucket: string, key: string, locations: readonly ShardLocation[], fences: ReadonlyMap<string, LeaseFence>): Promise<void> {
  await Promise.allSettled(
    locations.map(async (location) => {
      const fence = fences.get(diskKey(location));
      const node = cluster.node(location.nodeId);
      if (fence === undefined || node === undefined) return;
      await withTimeout(node.releaseLease(location.diskId, bucket, key, fence), LEASE_CALL_TIMEOUT_MS, `release on ${diskKey(location)}`);
    }),
  );
}

export interface KeyLockOptions {
  readonly waitMs?: number;
  readonly ttlMs?: number;
}

/**
 * Runs `body` holding the lock of bucket/key over `locations` (the key's placement), and
 * releases it however `body` ends. ConditionalRequestConflict when the lock stays taken for
 * `waitMs`; ServiceUnavailable when too few disks answer to ever reach the quorum.
 */
export async function withKeyLock<T>(cluster: Cluster, bucket: string, key: string, locations: readonly ShardLocation[], body: (lock: KeyLock) => Promise<T>, options: KeyLockOptions = {}): Promise<T> {
  const { k, m } = cluster.map.ec;
  const quorum = leaseQuorum(k, m);
  const deadline = Date.now() + (options.waitMs ?? LEASE_ACQUIRE_WAIT_MS);
  for (let attempt = 0; ; attempt++) {
    const { granted, busy } = await tryAcquire(cluster, bucket, key, locations, options.ttlMs ?? LEASE_TTL_MS);
    if (granted.size >= quorum) {
      try {
        return await body({ fences: granted });
      } finally {
        await releaseAll(cluster, bucket, key, locations, granted);
      }
    }
    await releaseAll(cluster, bucket, key, locations, granted);
    if (granted.size + busy < quorum) {
      throw new TesseraError("ERR_WRITE_QUORUM", `lock on ${bucket}/${key}: ${granted.size + busy} of ${locations.length} disks answered, ${quorum} needed`);
    }
    if (Date.now() >= deadline) throw lockConflict(bucket, key);
    await delay(randomInt(1, Math.min(LEASE_RETRY_MAX_MS, LEASE_RETRY_FIRST_MS * 2 ** Math.min(attempt, 16)) + 1));
  }
}

export function lockConflict(bucket: string, key: string): TesseraError {
  return new TesseraError("ERR_VERSION_CONFLICT", `${bucket}/${key}: another conditional write holds or took the key's lock`, { kind: "conditional-conflict" });
}
