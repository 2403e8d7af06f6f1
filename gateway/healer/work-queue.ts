/**
 * The healer's in-memory work list, ordered by risk: an object with fewer spare shards is
 * always taken before one with more (0 spare before 1, and so on), first come first served
 * within a level. It is bounded: producers (scans, the durable repair list) wait while it is
 * full. What makes the work durable is elsewhere: scans checkpoint their position only below
 * the oldest unfinished item (scan.ts), and repair-list entries are removed only once done.
 */
import { assert } from "../../core/assert.js";
import type { DiskRef } from "./gather.js";

export type WorkSource = "failure" | "scan" | "rebalance" | "scrub" | "repair-list" | "manual";

export interface WorkItem {
  readonly bucket: string;
  readonly key: string;
  /** Spare shards estimated when queued (healthy - k); lower is riskier. */
  readonly spare: number;
  /** Object bytes, for progress and ETA. */
  readonly size: number;
  /** Estimated shard bytes this repair writes, for the ETA. */
  readonly bytesToWrite: number;
  readonly seeds: readonly DiskRef[];
  readonly verify: boolean;
  readonly source: WorkSource;
  /**
   * Called once the item's repair has run (scan watermarks, repair-list removal), with how
   * it ended. An entry of the durable repair list is removed only when it is `done`.
   */
  readonly settle?: Settle;
}

/**
 * How a repair ended: `done` (repaired, or nothing was left to do), `left` (it ran, but work
 * remains that cannot be done now: a disk it needs is unreadable, a newer version blocks it),
 * or `failed` (it threw).
 */
export type RepairEnd = "done" | "left" | "failed";
export type Settle = (end: RepairEnd) => void;

export class WorkQueue {
  readonly #capacity: number;
  /** One FIFO per spare level, lowest first. */
  readonly #levels = new Map<number, WorkItem[]>();
  readonly #queued = new Map<string, WorkItem>();
  #waitingProducers: Array<() => void> = [];
  #waitingConsumers: Array<() => void> = [];

  constructor(capacity: number) {
    assert(Number.isInteger(capacity) && capacity >= 1, "a queue holds at least one item");
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#queued.size;
  }

  /** Items by spare level, for status. */
  countsBySpare(): Map<number, number> {
    return new Map([...this.#levels].map(([spare, items]) => [spare, items.length]));
  }

  bytesToWrite(): number {
    let total = 0;
    for (const item of this.#queued.values()) total += item.bytesToWrite;
    return total;
  }

  /**
   * Waits for room, then queues. An item already queued keeps its place (at the lower spare of
   * the two) and takes over the newcomer's settle: both producers learn how the one repair ended.
   */
  async push(item: WorkItem, signal?: AbortSignal): Promise<void> {
    const id = `${item.bucket}/${item.key}`;
    const existing = this.#queued.get(id);
    if (existing !== undefined) {
      const riskier = item.spare < existing.spare;
      const settle = chain(existing.settle, item.settle);
      const merged = { ...(riskier ? item : existing), verify: item.verify || existing.verify, ...(settle === undefined ? {} : { settle }) };
      if (riskier) this.#replace(existing, merged);
      else this.#merge(existing, merged);
      return;
    }
    while (this.#queued.size >= this.#capacity) {
      if (signal?.aborted === true) throw signal.reason;
      await new Promise<void>((resolve) => this.#waitingProducers.push(resolve));
    }
    this.#insert(item);
  }

  #insert(item: WorkItem): void {
    const level = this.#levels.get(item.spare) ?? [];
    level.push(item);
    this.#levels.set(item.spare, level);
    this.#queued.set(`${item.bucket}/${item.key}`, item);
    this.#wake(this.#waitingConsumers);
  }

  /** `item` in the place of `existing` (same key and spare level). */
  #merge(existing: WorkItem, item: WorkItem): void {
    const level = this.#levels.get(existing.spare) ?? [];
    const at = level.indexOf(existing);
    assert(at >= 0 && item.spare === existing.spare, "a queued item is in its spare level's list");
    level[at] = item;
    this.#queued.set(`${item.bucket}/${item.key}`, item);
  }

  #replace(existing: WorkItem, item: WorkItem): void {
    const level = this.#levels.get(existing.spare) ?? [];
    level.splice(level.indexOf(existing), 1);
    if (level.length === 0) this.#levels.delete(existing.spare);
    this.#queued.delete(`${existing.bucket}/${existing.key}`);
    this.#insert(item);
  }

  /** The riskiest item, or undefined when empty. */
  take(): WorkItem | undefined {
    const lowest = Math.min(...this.#levels.keys());
    const level = this.#levels.get(lowest);
    const item = level?.shift();
    if (item === undefined) return undefined;
    if (level?.length === 0) this.#levels.delete(lowest);
    this.#queued.delete(`${item.bucket}/${item.key}`);
    this.#wake(this.#waitingProducers);
    return item;
  }

  /** Resolves when an item may be available (or after `timeoutMs`). */
  async waitForItem(timeoutMs: number): Promise<void> {
    if (this.#queued.size > 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#waitingConsumers.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Releases every waiting producer and consumer (shutdown). */
  wakeAll(): void {
    this.#wake(this.#waitingProducers, true);
    this.#wake(this.#waitingConsumers, true);
  }

  #wake(waiting: Array<() => void>, all = false): void {
    if (waiting === this.#waitingProducers) {
      const woken = all ? this.#waitingProducers : this.#waitingProducers.slice(0, 1);
      this.#waitingProducers = all ? [] : this.#waitingProducers.slice(1);
      for (const resolve of woken) resolve();
    } else {
      const woken = this.#waitingConsumers;
      this.#waitingConsumers = [];
      for (const resolve of woken) resolve();
    }
  }
}

function chain(first: Settle | undefined, second: Settle | undefined): Settle | undefined {
  if (first === undefined) return second;
  if (second === undefined) return first;
  return (end) => {
    first(end);
    second(end);
  };
}
