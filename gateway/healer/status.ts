/**
 * The healer's status as the admin API returns it (GET /_tessera/admin/heal) and the CLI
 * shows it: what runs, what is done and left, objects at risk by spare-shard count, the
 * rebuild rate and the ETA, the throttle, and what the failure detector saw.
 */
import type { DetectorEvent, NodeStatus } from "./detector.js";
import type { Healer, JobRecord } from "./healer.js";
import type { RecentFailure, Totals } from "./progress.js";
import type { RecordPosition } from "./record-merge.js";
import type { ScanKind } from "./scan.js";

export interface JobStatus {
  readonly id: string;
  readonly kind: ScanKind;
  readonly basis: string;
  /** 1-based pass, of `passes` (a failure scan: a count pass, then one pass per spare level). */
  readonly pass: number;
  readonly passes: number;
  readonly startedAt: number;
  readonly resumed: boolean;
  readonly objectsScanned: number;
  readonly position?: RecordPosition;
  readonly pendingObjects: number;
  readonly listingErrors: readonly string[];
}

export interface HealerStatus {
  readonly now: number;
  readonly startedAt: number;
  /** idle: nothing to do; scanning: a scan is listing; repairing: work is queued or running. */
  readonly state: "idle" | "scanning" | "repairing";
  /** Nothing left to do for the present failures and map (Healer.quiet). */
  readonly quiet: boolean;
  readonly epoch: number;
  readonly ec: { readonly k: number; readonly m: number };
  readonly outDisks: readonly string[];
  readonly job?: JobStatus;
  /** Recent jobs, newest last. */
  readonly history: readonly JobRecord[];
  readonly totals: Totals;
  /** Objects counted at risk by the last failure scan and not yet repaired, by spare shards. */
  readonly atRisk: Readonly<Record<string, number>>;
  readonly queue: { readonly length: number; readonly inFlight: number; readonly bySpare: Readonly<Record<string, number>>; readonly bytesToWrite: number };
  readonly rebuildBytesPerSecond: number;
  /** Shard bytes still to write (counted at-risk objects plus queued work). */
  readonly bytesLeft: number;
  /** Seconds to finish at the current rate; undefined when idle or not measurable yet. */
  readonly etaSeconds?: number;
  readonly throttle: { readonly concurrency: number; readonly bandwidthBytesPerSecond: number };
  readonly lastCompleted: Readonly<Partial<Record<ScanKind, number>>>;
  readonly retired: readonly string[];
  /** Retired nodes with no object shards left: safe to stop. */
  readonly drained: readonly string[];
  readonly recentFailures: readonly RecentFailure[];
  readonly nodes: readonly NodeStatus[];
  readonly events: readonly DetectorEvent[];
}

function record(map: ReadonlyMap<number, number>): Record<string, number> {
  return Object.fromEntries([...map].sort(([a], [b]) => a - b).map(([spare, count]) => [String(spare), count]));
}

export function healerStatus(healer: Healer): HealerStatus {
  const job = healer.running;
  const rate = healer.progress.rebuildBytesPerSecond();
  const queued = healer.queue.size + healer.inFlight;
  const bytesLeft = healer.progress.riskBytesLeft + healer.queue.bytesToWrite();
  const state = job !== undefined && job.pendingItems === 0 && queued === 0 ? "scanning" : queued > 0 ? "repairing" : job !== undefined ? "scanning" : "idle";
  const { k, m } = healer.cluster.map.ec;
  return {
    now: Date.now(),
    startedAt: healer.startedAt,
    state,
    quiet: healer.quiet,
    epoch: healer.cluster.map.epoch,
    ec: { k, m },
    outDisks: [...healer.detector.outDisks()].sort(),
    ...(job === undefined ? {} : { job: jobStatus(job) }),
    history: healer.history.map((record) => ({ ...record })),
    totals: { ...healer.progress.totals },
    atRisk: record(healer.progress.atRisk),
    queue: { length: healer.queue.size, inFlight: healer.inFlight, bySpare: record(healer.queue.countsBySpare()), bytesToWrite: healer.queue.bytesToWrite() },
    rebuildBytesPerSecond: Math.round(rate),
    bytesLeft,
    ...(rate > 0 && bytesLeft > 0 ? { etaSeconds: Math.ceil(bytesLeft / rate) } : {}),
    throttle: { concurrency: healer.concurrency, bandwidthBytesPerSecond: healer.throttle.bytesPerSecond },
    lastCompleted: { ...healer.persisted.lastCompleted },
    retired: healer.persisted.retired.map((node) => node.id),
    drained: [...healer.drained],
    recentFailures: [...healer.progress.failures],
    nodes: healer.detector.status(),
    events: healer.detector.events().slice(-50),
  };
}

function jobStatus(job: NonNullable<Healer["running"]>): JobStatus {
  return {
    id: job.id,
    kind: job.kind,
    basis: job.basis,
    pass: Math.min(job.pass + 1, job.passes),
    passes: job.passes,
    startedAt: job.startedAt,
    resumed: job.resumed,
    objectsScanned: job.scanned,
    ...(job.position === undefined ? {} : { position: job.position }),
    pendingObjects: job.pendingItems,
    listingErrors: job.listingErrors.slice(0, 10),
  };
}
