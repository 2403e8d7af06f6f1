/**
 * The gateway-wide budget of stripe bytes (issue 7: gateway RSS under 256 MiB with 16
 * concurrent 64 MiB PUTs or GETs, or while the healer rebuilds). Every large PUT's encoder,
 * GET's decoder and healer's rebuild of a shard set holds a share of it for its data phase:
 * its stripes being cut, encoded, queued for the shard writers or served, sized by its
 * stripe (perRequestBytes). A request that does not fit waits, first come first served,
 * before it reads its first byte; its client's bytes wait in the socket.
 *
 * It cannot deadlock: a request asks once, while holding nothing, and releases when its data
 * phase ends, whatever happens; a request bigger than the whole budget is let through alone
 * (used = 0), so one request always progresses; and a request already holding a share (a
 * copy: its decoder feeds its encoder) asks for its second share as `nested` and is granted
 * it at once, over the budget, instead of waiting on requests that may be waiting on it. The
 * copy says so explicitly (ReadObjectOptions.forCopy): an AsyncLocalStorage that found out by
 * itself switched on Node's promise hooks for the whole process at the first large PUT,
 * about 3% of the gateway's CPU on every request after it.
 */
import { assert } from "../../core/assert.js";

const MiB = 1024 * 1024;

/**
 * Stripe bytes all requests hold at once. The gateway's own footprint (code, heap, tsx, MD5
 * worker, sockets) is about 150-180 MiB on this 2-core VM, and V8 leaves up to 64 MiB of
 * network reads and stripes as garbage before external memory triggers a collection. 24 MiB
 * is still five 64 MiB PUTs or six GETs at once in their data phase, more than two cores can
 * feed. Measured with 16 concurrent 16 MiB PUTs, then GETs, then both
 * (test/gateway/memory-concurrent.test.ts): peak RSS 207-222 MiB at 24 MiB, 235-257 MiB at 32
 * MiB, which left too little room under the 256 MiB bound; 64 MiB PUT and GET ×4 throughput
 * showed no difference between the two beyond the run-to-run noise.
 */
export const STRIPE_BUDGET_BYTES = 24 * MiB;

/**
 * Stripes a PUT holds: the one being cut, the one queued for the shard writers, the one they
 * are sending, and one sent, kept to be used again (StripeBuffers in encode.ts keeps this many
 * slots per PUT, reused round robin).
 */
export const PUT_STRIPES_HELD = 4;
/**
 * Stripes a GET holds: the one being served, and about three more buffered on the way: each
 * of its k shard readers queues up to a chunk (core/readable-chunks.ts) plus the socket
 * pieces of the chunk it is gathering (readFramePieces), and the response socket holds a
 * chunk or two.
 */
export const GET_STRIPES_HELD = 4;

/**
 * What a healer's rebuild of one shard set holds, in stripe sets of its shard set: its readers
 * buffer as a GET's do (GET_STRIPES_HELD data stripes: about three stripe sets), plus the one
 * reconstruct scratch of k + m chunks (gateway/healer/rebuild.ts); its writers' channels hold
 * a chunk or two per rebuilt shard, within the rounding. 6 MiB at 4+2 with 1 MiB stripes.
 */
export const REBUILD_STRIPE_SETS_HELD = 4;
/**
 * The part of the budget the healer's rebuilds may hold at once: they take a share of this and
 * of the gateway's budget, so that rebuilds never hold more than half of it and clients keep
 * the other half. Two large rebuilds at 4+2 (12 MiB): measured while rebuilding an emptied
 * node of 16 × 64 MiB and 3,100 smaller objects, two at once restored 51-52 MB/s as eight did
 * (51-54), and the gateway peaked at 215-220 MiB instead of 275-300 (bench/README.md, "Fixes
 * and their effect"). The healer still repairs REBUILD_CONCURRENCY_DEFAULT objects at once:
 * small ones, which hold less than BUDGET_SHARE_BYTES_MIN, pass.
 */
export const HEALER_STRIPE_BUDGET_BYTES = STRIPE_BUDGET_BYTES / 2;

/** A request whose share would be smaller than this skips the budget: small objects hold next to nothing, and must not queue behind large ones. */
export const BUDGET_SHARE_BYTES_MIN = 256 * 1024;

/** Releases a share once (later calls do nothing). */
export type Release = () => void;

interface Waiter {
  readonly bytes: number;
  readonly grant: () => void;
}

export class StripeBudget {
  readonly capacityBytes: number;
  #usedBytes = 0;
  readonly #waiters: Waiter[] = [];

  constructor(capacityBytes: number) {
    assert(Number.isSafeInteger(capacityBytes) && capacityBytes > 0, "a budget holds some bytes");
    this.capacityBytes = capacityBytes;
  }

  get usedBytes(): number {
    return this.#usedBytes;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Waits for `bytes` of the budget (see the file comment for why this never deadlocks).
   * `nested`: the caller's request already holds a share and waits on this one (a copy's
   * decoder): granted at once, over the budget.
   */
  async acquire(bytes: number, options: { readonly nested?: boolean } = {}): Promise<Release> {
    assert(Number.isSafeInteger(bytes) && bytes >= 0, "a share is a whole number of bytes");
    if (options.nested === true || this.#fits(bytes)) {
      this.#usedBytes += bytes;
    } else {
      await new Promise<void>((resolve) => this.#waiters.push({ bytes, grant: resolve }));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#usedBytes -= bytes;
      this.#grantWaiters();
    };
  }

  #fits(bytes: number): boolean {
    return this.#waiters.length === 0 && (this.#usedBytes === 0 || this.#usedBytes + bytes <= this.capacityBytes);
  }

  #grantWaiters(): void {
    for (;;) {
      const next = this.#waiters[0];
      if (next === undefined || (this.#usedBytes > 0 && this.#usedBytes + next.bytes > this.capacityBytes)) return;
      this.#waiters.shift();
      this.#usedBytes += next.bytes;
      next.grant();
    }
  }
}

/** The gateway's budget: every encoder and decoder of this process shares it. */
export const stripeBudget = new StripeBudget(STRIPE_BUDGET_BYTES);
/** The healer's part of it (HEALER_STRIPE_BUDGET_BYTES): a rebuild takes this share first, then the gateway's. */
export const healerStripeBudget = new StripeBudget(HEALER_STRIPE_BUDGET_BYTES);

/** The bytes of `stripes` stripe sets (k data chunks and m parity chunks) of `blockBytes` stripes. */
export function stripeSetBytes(blockBytes: number, k: number, m: number, stripes: number): number {
  return Math.ceil((stripes * blockBytes * (k + m)) / k);
}

/**
 * The share of a PUT's encoder or a rebuild of one shard set that holds `stripeSets` stripe
 * sets of the object's stripes: never more than one stripe set of the whole object, since an
 * object shorter than a stripe is all one stripe.
 */
export function objectShareBytes(object: { readonly blockBytes: number; readonly k: number; readonly m: number; readonly objectLength: number }, stripeSets: number): number {
  return Math.min(stripeSetBytes(object.blockBytes, object.k, object.m, stripeSets), stripeSetBytes(object.objectLength, object.k, object.m, 1));
}
