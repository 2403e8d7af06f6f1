/**
 * What the healer has done and has left: totals since the gateway started, objects at risk
 * by spare-shard count (from the last failure scan's count, less what has been repaired since),
 * bytes left, rebuild rate over a sliding window, and the ETA they give.
 */
import { RATE_WINDOW_MS } from "./limits.js";
import type { RepairOutcome } from "./repair-object.js";

/** Recent failures kept for status. */
const FAILURES_KEPT_MAX = 20;
/** Samples of the written-bytes counter: one per sample interval over the rate window. */
const RATE_SAMPLE_INTERVAL_MS = 500;

export interface Totals {
  objectsScanned: number;
  bytesScanned: number;
  objectsQueued: number;
  objectsRepaired: number;
  objectsHealthy: number;
  objectsDegraded: number;
  objectsFailed: number;
  shardsRebuilt: number;
  shardsCopied: number;
  shardsReused: number;
  corruptFound: number;
  garbageRemoved: number;
  orphanShardsRemoved: number;
  objectsScrubbed: number;
  bytesScrubbed: number;
  bytesRead: number;
  bytesWritten: number;
}

export interface RecentFailure {
  readonly at: number;
  readonly bucket: string;
  readonly key: string;
  readonly status: string;
  readonly detail: string;
}

export class Progress {
  readonly totals: Totals = {
    objectsScanned: 0,
    bytesScanned: 0,
    objectsQueued: 0,
    objectsRepaired: 0,
    objectsHealthy: 0,
    objectsDegraded: 0,
    objectsFailed: 0,
    shardsRebuilt: 0,
    shardsCopied: 0,
    shardsReused: 0,
    corruptFound: 0,
    garbageRemoved: 0,
    orphanShardsRemoved: 0,
    objectsScrubbed: 0,
    bytesScrubbed: 0,
    bytesRead: 0,
    bytesWritten: 0,
  };
  /** Objects known to be at risk (spare < m) and not yet repaired, by spare count. */
  readonly atRisk = new Map<number, number>();
  /** Estimated shard bytes still to write for the counted at-risk objects. */
  riskBytesLeft = 0;
  readonly failures: RecentFailure[] = [];
  readonly #samples: Array<{ at: number; bytes: number }> = [];
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A failure scan counted the objects at risk afresh. */
  resetRisk(counts: ReadonlyMap<number, number>, bytes: number): void {
    this.atRisk.clear();
    for (const [spare, count] of counts) this.atRisk.set(spare, count);
    this.riskBytesLeft = bytes;
  }

  /** One counted object is no longer at risk. */
  riskResolved(spare: number, bytes: number): void {
    const left = (this.atRisk.get(spare) ?? 0) - 1;
    if (left > 0) this.atRisk.set(spare, left);
    else this.atRisk.delete(spare);
    this.riskBytesLeft = Math.max(0, this.riskBytesLeft - bytes);
  }

  record(outcome: RepairOutcome, scrub: boolean): void {
    const t = this.totals;
    if (scrub) {
      t.objectsScrubbed += 1;
      t.bytesScrubbed += outcome.size;
    }
    t.shardsRebuilt += outcome.shardsRebuilt;
    t.shardsCopied += outcome.shardsCopied;
    t.shardsReused += outcome.shardsReused;
    t.corruptFound += outcome.corruptFound;
    t.garbageRemoved += outcome.garbageRemoved;
    if (outcome.status === "repaired") t.objectsRepaired += 1;
    else if (outcome.status === "healthy" || outcome.status === "absent") t.objectsHealthy += 1;
    else if (outcome.status === "degraded") t.objectsDegraded += 1;
    if (outcome.status === "degraded" || outcome.status === "blocked") this.#remember(outcome.bucket, outcome.key, outcome.status, outcome.detail.join("; "));
  }

  failed(bucket: string, key: string, error: unknown): void {
    this.totals.objectsFailed += 1;
    this.#remember(bucket, key, "failed", error instanceof Error ? error.message : String(error));
  }

  #remember(bucket: string, key: string, status: string, detail: string): void {
    this.failures.push({ at: this.#now(), bucket, key, status, detail });
    this.failures.splice(0, Math.max(0, this.failures.length - FAILURES_KEPT_MAX));
  }

  written(bytes: number): void {
    this.totals.bytesWritten += bytes;
    this.#sample();
  }

  #sample(): void {
    const now = this.#now();
    const last = this.#samples[this.#samples.length - 1];
    if (last !== undefined && now - last.at < RATE_SAMPLE_INTERVAL_MS) return;
    this.#samples.push({ at: now, bytes: this.totals.bytesWritten });
    while (this.#samples.length > 1 && (this.#samples[0]?.at ?? now) < now - RATE_WINDOW_MS) this.#samples.shift();
  }

  /** Shard bytes written per second over the last RATE_WINDOW_MS (0 when idle). */
  rebuildBytesPerSecond(): number {
    const now = this.#now();
    const oldest = this.#samples.find((sample) => sample.at >= now - RATE_WINDOW_MS);
    if (oldest === undefined) return 0;
    const elapsedMs = Math.max(now - oldest.at, RATE_SAMPLE_INTERVAL_MS);
    return ((this.totals.bytesWritten - oldest.bytes) * 1000) / elapsedMs;
  }
}
