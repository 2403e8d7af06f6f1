/**
 * Hybrid logical clock and version ids. A version id is 16 bytes, hex-encoded:
 *   6 bytes  physical milliseconds (big-endian)  — wall clock, never going backwards
 *   2 bytes  logical counter (big-endian)         — orders events within one millisecond
 *   8 bytes  random                               — makes ids from different gateways unique
 * Big-endian fields make the hex string compare in time order, so "newest wins" is a
 * string comparison on every node, with no clock service.
 */
import { randomPooled } from "../core/random-pool.js";
import { assert } from "../core/assert.js";
import { VERSION_ID_BYTES } from "../core/limits.js";

/** Largest millisecond count that fits 6 bytes (year 10889): a clock past it is a bug. */
const PHYSICAL_MS_MAX = 2 ** 48 - 1;
/** Events one gateway may stamp within one millisecond before borrowing the next one. */
const LOGICAL_MAX = 0xffff;
/**
 * How far ahead of our wall clock an observed timestamp may be before we stop adopting it:
 * a peer with a clock an hour fast must not drag every later version an hour ahead.
 */
export const HLC_DRIFT_MAX_MS = 60_000;

export interface HlcTimestamp {
  readonly physicalMs: number;
  readonly logical: number;
}

export class HybridClock {
  #last: HlcTimestamp = { physicalMs: 0, logical: 0 };
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A timestamp greater than every one this clock issued or observed. */
  tick(): HlcTimestamp {
    const wall = this.#now();
    const last = this.#last;
    const next = wall > last.physicalMs ? { physicalMs: wall, logical: 0 } : bump(last);
    this.#last = next;
    return next;
  }

  /** Folds in a timestamp seen elsewhere (a record read from a node), within the drift bound. */
  observe(seen: HlcTimestamp): void {
    if (seen.physicalMs > this.#now() + HLC_DRIFT_MAX_MS) return;
    if (compareHlc(seen, this.#last) > 0) this.#last = seen;
  }

  /** A new version id, newer than any this clock has issued or observed. */
  nextVersionId(): string {
    return encodeVersionId(this.tick(), randomPooled(VERSION_ID_BYTES - 8));
  }
}

function bump(last: HlcTimestamp): HlcTimestamp {
  return last.logical < LOGICAL_MAX ? { physicalMs: last.physicalMs, logical: last.logical + 1 } : { physicalMs: last.physicalMs + 1, logical: 0 };
}

export function compareHlc(a: HlcTimestamp, b: HlcTimestamp): number {
  return a.physicalMs - b.physicalMs || a.logical - b.logical;
}

export function encodeVersionId(timestamp: HlcTimestamp, tail: Buffer): string {
  assert(Number.isInteger(timestamp.physicalMs) && timestamp.physicalMs >= 0 && timestamp.physicalMs <= PHYSICAL_MS_MAX, "physical time fits 48 bits");
  assert(tail.length === VERSION_ID_BYTES - 8, "the random tail fills the rest of the id");
  const id = Buffer.alloc(VERSION_ID_BYTES);
  id.writeUIntBE(timestamp.physicalMs, 0, 6);
  id.writeUInt16BE(timestamp.logical, 6);
  tail.copy(id, 8);
  return id.toString("hex");
}

export function decodeVersionId(versionId: string): HlcTimestamp {
  const id = Buffer.from(versionId, "hex");
  assert(id.length === VERSION_ID_BYTES, "version ids are validated before decoding");
  return { physicalMs: id.readUIntBE(0, 6), logical: id.readUInt16BE(6) };
}
