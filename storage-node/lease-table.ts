/**
 * Per-key leases of one disk, for conditional writes (docs/conditional-writes.md). At most
 * one holder's lease on a key runs at a time; each grant gets a new fencing token; a fenced
 * record write is accepted only while its grant is still the key's current lease, and no
 * lease is granted on a key while a fenced write to it is in progress, so "check the fence,
 * write the record" is atomic with respect to the next grant.
 *
 * Leases live in memory. A restarted node has none, so it refuses every fenced write made
 * under a grant from before the restart: a lost lease only ever costs a retry, never safety.
 * Expiry uses the node's monotonic clock, so only durations cross the wire, never times.
 */
import { TesseraError, requireArgument } from "../core/errors.js";
import { HEX_ID_PATTERN, type LeaseFence, type LeaseGrant, type LeaseRequest } from "../core/storage-api.js";
import { validateBucketName, validateObjectKey } from "./record-rules.js";

/**
 * Longest lease a node grants. A conditional write holds its lease for a record read and a
 * record write (milliseconds); a crashed holder blocks its key for at most this long.
 */
export const LEASE_TTL_MS_MAX = 60_000;
/**
 * Leases kept per disk. Each costs ~200 bytes; expired ones are pruned when the table is
 * full, so this bounds memory, not throughput (a full table of live leases refuses grants).
 */
export const LEASES_PER_DISK_MAX = 100_000;
/**
 * Tokens start at the boot time in ms times this, so they keep rising across restarts
 * unless a node granted more than this many leases per millisecond of its previous life.
 */
const TOKENS_PER_MS = 1024;

interface Lease {
  readonly holder: string;
  readonly token: number;
  readonly expiresAt: number;
  /** Fenced writes in progress under this grant; the key is not granted again meanwhile. */
  writing: number;
}

function leaseKey(bucket: string, key: string): string {
  return `${bucket}\u0000${key}`;
}

function validateFence(fence: LeaseFence): void {
  requireArgument(typeof fence === "object" && fence !== null, "fence", "must be an object");
  requireArgument(typeof fence.holder === "string" && HEX_ID_PATTERN.test(fence.holder), "fence.holder", "must be 32 lowercase hex characters");
  requireArgument(Number.isSafeInteger(fence.token) && fence.token >= 0, "fence.token", "must be a whole number");
}

export class LeaseTable {
  readonly #leases = new Map<string, Lease>();
  readonly #now: () => number;
  #nextToken: number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
    this.#nextToken = Date.now() * TOKENS_PER_MS;
  }

  acquire(request: LeaseRequest): LeaseGrant {
    requireArgument(typeof request === "object" && request !== null, "request", "must be an object");
    validateBucketName(request.bucket);
    validateObjectKey(request.key);
    requireArgument(typeof request.holder === "string" && HEX_ID_PATTERN.test(request.holder), "holder", "must be 32 lowercase hex characters");
    requireArgument(Number.isSafeInteger(request.ttlMs) && request.ttlMs >= 1 && request.ttlMs <= LEASE_TTL_MS_MAX, "ttlMs", `must be an integer in 1..${LEASE_TTL_MS_MAX}`);
    const id = leaseKey(request.bucket, request.key);
    const now = this.#now();
    const current = this.#leases.get(id);
    if (current !== undefined && (current.writing > 0 || (current.expiresAt > now && current.holder !== request.holder))) {
      return { granted: false, retryAfterMs: Math.max(1, Math.ceil(current.expiresAt - now)) };
    }
    if (current === undefined && this.#leases.size >= LEASES_PER_DISK_MAX) this.#prune(now);
    if (current === undefined && this.#leases.size >= LEASES_PER_DISK_MAX) return { granted: false, retryAfterMs: LEASE_TTL_MS_MAX };
    const token = this.#nextToken++;
    this.#leases.set(id, { holder: request.holder, token, expiresAt: now + request.ttlMs, writing: 0 });
    return { granted: true, token };
  }

  release(bucket: string, key: string, fence: LeaseFence): boolean {
    validateBucketName(bucket);
    validateObjectKey(key);
    validateFence(fence);
    const id = leaseKey(bucket, key);
    const current = this.#leases.get(id);
    if (current === undefined || current.token !== fence.token || current.holder !== fence.holder || current.writing > 0) return false;
    this.#leases.delete(id);
    return true;
  }

  /**
   * Runs `write` only if `fence` is the key's current grant. Expiry alone does not refuse
   * it: until someone else is granted the key, nobody else can have acted under the lock.
   */
  async fenced<T>(bucket: string, key: string, fence: LeaseFence, write: () => Promise<T>): Promise<T> {
    validateFence(fence);
    const current = this.#leases.get(leaseKey(bucket, key));
    if (current === undefined || current.token !== fence.token || current.holder !== fence.holder) {
      throw new TesseraError("ERR_VERSION_CONFLICT", `the lease on ${bucket}/${key} with token ${fence.token} is no longer current`, { kind: "fenced", token: fence.token });
    }
    current.writing += 1;
    try {
      return await write();
    } finally {
      current.writing -= 1;
    }
  }

  /** Leases held now (tests, metrics). */
  get size(): number {
    return this.#leases.size;
  }

  #prune(now: number): void {
    for (const [id, lease] of this.#leases) if (lease.expiresAt <= now && lease.writing === 0) this.#leases.delete(id);
  }
}
