/**
 * The healer, run inside a gateway process (DESIGN.md, "Healing"): the failure detector, the
 * scheduler that picks the scan to run (a failure first, then a rebalance after a map change
 * or a returning disk, then the periodic scan, then scrubbing), the risk-ordered work queue
 * and the workers that repair one object each, throttled by concurrency and bandwidth (both
 * adjustable at run time). Its state (checkpoints, completions, down and retired nodes) lives
 * on the nodes (heal-state.ts), so a restarted gateway resumes where it stopped.
 */
import type { Logger } from "pino";
import type { StorageNode } from "../../core/storage-api.js";
import type { ClusterMap, NodeConfig } from "../../placement/cluster-map.js";
import type { Cluster } from "../objects/cluster.js";
import { NodeRepairQueue } from "../objects/repair-queue.js";
import { FailureDetector, type DetectorEvent } from "./detector.js";
import type { DiskRef } from "./gather.js";
import { HealStateStore } from "./heal-state.js";
import { REPAIR_QUEUE_OBJECTS_MAX, SCAN_PAGE_RECORDS, SCHEDULER_TICK_MS } from "./limits.js";
import { shardName, sweepDisk } from "./orphan-sweep.js";
import { Progress } from "./progress.js";
import { repairObject, type RepairContext, type RepairOutcome } from "./repair-object.js";
import { readRepairList, removeRepairEntry, type RepairListEntry } from "./repair-list.js";
import { ScanJob, type ScanCheckpoint, type ScanKind } from "./scan.js";
import type { HealerSettings } from "./settings.js";
import { effectiveMap, placerOf } from "./target-placement.js";
import { Throttle } from "./throttle.js";
import { WorkQueue, type RepairEnd, type WorkItem } from "./work-queue.js";
import { healerStatus, type HealerStatus } from "./status.js";

/**
 * How long stop() lets running repairs finish before giving up on them (a gateway must stop
 * within its shutdown deadline; an abandoned shard write is discarded by its node).
 */
export const STOP_WAIT_MS = 1_000;
/** Longest pause between retries of a scan that keeps leaving work (nothing can be fixed yet). */
export const RETRY_AFTER_MAX_MS = 10 * 60_000;
const PRIORITY: Readonly<Record<ScanKind, number>> = { failure: 3, rebalance: 2, scan: 1, scrub: 0 };
const STATE_DOCUMENT = "healer";

export interface HealerOptions {
  readonly cluster: Cluster;
  readonly settings: HealerSettings;
  readonly logger: Logger;
  /** A StorageNode for a node of a newer map (or a retired node after a restart). */
  readonly connect: (node: Pick<NodeConfig, "id" | "url">) => StorageNode;
  readonly now?: () => number;
}

interface Persisted {
  lastCompleted: Partial<Record<ScanKind, number>>;
  /** The out-disk set the last completed failure scan was for. */
  failureDoneFor?: string;
  /** Rebalances wanted (a map change, a disk back) and done, as generation numbers. */
  rebalanceWanted: number;
  rebalanceDone: number;
  /** The map epoch the healer last saw: a map changed while no gateway ran needs a rebalance too. */
  epoch?: number;
  down: Record<string, number>;
  retired: Array<{ id: string; url: string }>;
  /**
   * Kinds whose last job ended incomplete (an object left degraded, a listing that failed):
   * a retry is owed. Kept here so that a restarted gateway retries at once instead of taking
   * the completed-but-incomplete job as done (the back-off timer lives only in memory).
   */
  retriesOwed?: ScanKind[];
}

/** Jobs kept in `history` for status. */
const HISTORY_KEPT_MAX = 20;

export interface JobRecord {
  readonly id: string;
  readonly kind: ScanKind;
  readonly resumed: boolean;
  readonly startedAt: number;
  endedAt?: number;
  outcome?: "completed" | "incomplete" | "aborted" | "failed";
  scanned?: number;
}

interface Running {
  readonly job: ScanJob;
  /** The out disks when the job started: a clean full scan covers a failure scan for them. */
  readonly outKey: string;
  readonly abort: AbortController;
  readonly done: Promise<void>;
  degraded: number;
}

export class Healer {
  readonly cluster: Cluster;
  readonly detector: FailureDetector;
  readonly queue = new WorkQueue(REPAIR_QUEUE_OBJECTS_MAX);
  readonly progress: Progress;
  readonly throttle: Throttle;
  readonly #options: HealerOptions;
  readonly #state: HealStateStore;
  readonly #now: () => number;
  #persisted: Persisted = { lastCompleted: {}, rebalanceWanted: 0, rebalanceDone: 0, down: {}, retired: [] };
  #concurrency: number;
  #workers = 0;
  /** Repairs running, by "bucket/key": a second item for the same object waits for the first. */
  readonly #inFlight = new Map<string, Promise<void>>();
  #running: Running | undefined;
  #lastJob: ScanJob | undefined;
  /** Recent jobs, newest last: what ran, whether it resumed a checkpoint, how it ended. */
  readonly history: JobRecord[] = [];
  #requested = new Set<ScanKind>();
  #retryAt = new Map<ScanKind, number>();
  /** The pause before the next retry of each kind: doubles while runs stay incomplete. */
  #retryDelay = new Map<ScanKind, number>();
  #stopped = false;
  #timers: NodeJS.Timeout[] = [];
  #lastCheckpoint = 0;
  #repairListBusy = false;
  /**
   * Repair-list entries whose last repair left work or threw, by "bucket/key": when to try
   * again and the pause after that (doubling from retryAfterMs to RETRY_AFTER_MAX_MS). In
   * memory only: after a restart every entry on the list is tried again at once.
   */
  readonly #repairListRetry = new Map<string, { at: number; delayMs: number }>();
  #detectOnly = false;
  /** The out disks after the last detector change: a disk leaving this set has come back. */
  #lastOut = new Set<string>();
  #checkpointing = false;
  /**
   * Objects whose new record a reachable disk refused: a retried scan finds an object again
   * only by its records (a failure scan, by those naming an out disk), and when the refusing
   * disk is the one a shard moved to, every other record already names it. The repair list
   * (gateway/objects/repair-queue.ts) brings such an object back by its key, durably.
   */
  readonly #repairList: NodeRepairQueue;
  /** Retired nodes (dropped by a newer map) whose disks hold no more object records: safe to stop. */
  readonly drained = new Set<string>();
  /** Shards the healer vouched for during the current scan ("node/disk name"): never swept. */
  readonly #vouched = new Set<string>();
  readonly startedAt: number;

  constructor(options: HealerOptions) {
    this.#options = options;
    this.cluster = options.cluster;
    this.#now = options.now ?? Date.now;
    this.startedAt = this.#now();
    this.progress = new Progress(this.#now);
    this.throttle = new Throttle(options.settings.bandwidthBytesPerSecond);
    this.#concurrency = options.settings.concurrency;
    this.#state = new HealStateStore(options.cluster);
    this.#repairList = new NodeRepairQueue(options.cluster, { onError: (error) => options.logger.warn({ err: error }, "could not put an object on the repair list") });
    const { probeIntervalMs, probeTimeoutMs, suspectAfterMs, downAfterMs } = options.settings;
    this.detector = new FailureDetector({ cluster: options.cluster, probeIntervalMs, probeTimeoutMs, suspectAfterMs, downAfterMs, now: this.#now, onChange: (events) => this.#onDetector(events) });
  }

  get settings(): HealerSettings {
    return this.#options.settings;
  }

  get concurrency(): number {
    return this.#concurrency;
  }

  get running(): ScanJob | undefined {
    return this.#running?.job;
  }

  /** The job running now, or the last one that ran. */
  get lastJob(): ScanJob | undefined {
    return this.#lastJob;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  get persisted(): Readonly<Persisted> {
    return this.#persisted;
  }

  /**
   * Loads the durable state, reconnects retired nodes, and starts probing, scanning and
   * repairing; with `detectOnly` (a gateway whose healer is off) it only probes, for status.
   */
  async start(options: { detectOnly?: boolean } = {}): Promise<void> {
    if (options.detectOnly === true) {
      this.#detectOnly = true;
      this.detector.start();
      return;
    }
    const loaded = await this.#state.load<Persisted>(STATE_DOCUMENT).catch(() => undefined);
    if (loaded !== undefined) this.#persisted = { ...this.#persisted, ...loaded };
    if (this.#persisted.epoch !== undefined && this.#persisted.epoch !== this.cluster.map.epoch) this.#persisted.rebalanceWanted += 1;
    this.#persisted.epoch = this.cluster.map.epoch;
    const retired = new Map(this.#persisted.retired.filter((node) => this.cluster.node(node.id) === undefined).map((node) => [node.id, this.#options.connect(node)]));
    if (retired.size > 0) this.cluster.setMap(this.cluster.map, retired);
    this.detector.restoreDown(new Map(Object.entries(this.#persisted.down)));
    for (const kind of this.#persisted.retriesOwed ?? []) this.#retryAt.set(kind, this.#now());
    this.#lastOut = this.detector.outDisks();
    this.detector.start();
    this.setConcurrency(this.#concurrency);
    this.#every(SCHEDULER_TICK_MS, () => this.#schedule());
    this.#every(this.settings.repairListPollIntervalMs, () => this.#pollRepairList());
    this.#options.logger.info({ concurrency: this.#concurrency, bandwidth: this.throttle.bytesPerSecond, retired: retired.size }, "healer started");
  }

  #every(intervalMs: number, run: () => Promise<void> | void): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.#stopped) return;
      busy = true;
      Promise.resolve(run())
        .catch((error: unknown) => this.#options.logger.warn({ err: error }, "healer task failed"))
        .finally(() => (busy = false));
    }, intervalMs);
    timer.unref();
    this.#timers.push(timer);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#running?.abort.abort(new Error("healer stopping"));
    this.queue.wakeAll();
    await this.#saveCheckpoint(true);
    await this.detector.stop();
    const deadline = this.#now() + STOP_WAIT_MS;
    while (this.#inFlight.size > 0 && this.#now() < deadline) await sleep(50);
    await this.#repairList.settle();
  }

  // --- Run-time controls -------------------------------------------------------------------

  setConcurrency(concurrency: number): void {
    this.#concurrency = concurrency;
    while (this.#workers < concurrency && !this.#stopped) {
      const index = this.#workers++;
      void this.#work(index);
    }
  }

  setBandwidth(bytesPerSecond: number): void {
    this.throttle.bytesPerSecond = bytesPerSecond;
  }

  requestScan(kind: ScanKind): void {
    this.#requested.add(kind);
  }

  /** Adopts a newer map (SIGHUP or the admin API): nodes it drops stay known until drained. */
  async reloadMap(map: ClusterMap): Promise<{ epoch: number; added: string[]; removed: string[] }> {
    const before = this.cluster.map;
    const added = map.nodes.filter((node) => this.cluster.node(node.id) === undefined);
    const removed = before.nodes.filter((node) => !map.nodes.some((each) => each.id === node.id));
    this.cluster.setMap(map, new Map(added.map((node) => [node.id, this.#options.connect(node)])));
    const retired = [...this.#persisted.retired.filter((node) => !map.nodes.some((each) => each.id === node.id)), ...removed.map((node) => ({ id: node.id, url: node.url }))];
    this.#persisted.retired = [...new Map(retired.map((node) => [node.id, node])).values()];
    this.#persisted.epoch = map.epoch;
    this.#persisted.rebalanceWanted += 1;
    // New disks may make fixable what was waiting: retry at once, without the back-off.
    this.#retryDelay.clear();
    for (const kind of this.#retryAt.keys()) this.#retryAt.set(kind, this.#now());
    await this.#saveState();
    void this.detector.probeAll();
    this.#options.logger.info({ epoch: map.epoch, added: added.map((node) => node.id), removed: removed.map((node) => node.id) }, "cluster map reloaded");
    return { epoch: map.epoch, added: added.map((node) => node.id), removed: removed.map((node) => node.id) };
  }

  /** Repairs one object now (tests, the admin API), outside the queue. */
  async repairNow(bucket: string, key: string, options: { verify?: boolean; dryRun?: boolean } = {}): Promise<RepairOutcome> {
    return repairObject(this.#repairContext(), { bucket, key, ...options });
  }

  status(): HealerStatus {
    return healerStatus(this);
  }

  /**
   * Nothing left to do for the present failures and map: no scan running or owed (a failure
   * scan for the current out disks and a rebalance for the current map have completed, no
   * retry is due), nothing queued or in flight. Objects may still be short of full redundancy
   * when no disk can take their shards (status shows them at risk).
   */
  get quiet(): boolean {
    const out = this.outKey();
    const failureDone = out === "" || this.#persisted.failureDoneFor === out;
    return (
      this.detector.settled &&
      this.#running === undefined &&
      this.queue.size === 0 &&
      this.#inFlight.size === 0 &&
      this.#requested.size === 0 &&
      this.#retryAt.size === 0 &&
      failureDone &&
      this.#persisted.rebalanceDone >= this.#persisted.rebalanceWanted
    );
  }

  // --- Placement and health views ---------------------------------------------------------------

  readable = (disk: DiskRef): boolean => this.detector.readable(disk.nodeId, disk.diskId);

  #placer(): ReturnType<typeof placerOf> {
    return placerOf(effectiveMap(this.cluster.map, this.detector.outDisks()));
  }

  /** Disks that can be listed now: every readable disk of every known node. */
  listableDisks(): DiskRef[] {
    return this.detector.status().flatMap((node) => node.disks.filter((disk) => this.readable({ nodeId: node.nodeId, diskId: disk.diskId })).map((disk) => ({ nodeId: node.nodeId, diskId: disk.diskId })));
  }

  outKey(): string {
    return [...this.detector.outDisks()].sort().join(",");
  }

  #repairContext(): RepairContext {
    return {
      cluster: this.cluster,
      throttle: this.throttle,
      counters: { read: (bytes) => (this.progress.totals.bytesRead += bytes), written: (bytes) => this.progress.written(bytes) },
      readable: this.readable,
      isOut: (disk) => this.detector.outDisks().has(`${disk.nodeId}/${disk.diskId}`),
      placer: () => this.#placer(),
      graceMs: this.settings.partialVersionGraceMs,
      now: this.#now,
      onShardReused: (disk, shard) => this.#vouched.add(`${disk.nodeId}/${disk.diskId} ${shardName(shard)}`),
    };
  }

  // --- Workers ------------------------------------------------------------------------------

  async #work(index: number): Promise<void> {
    try {
      while (!this.#stopped && index < this.#concurrency) {
        const item = this.queue.take();
        if (item === undefined) {
          await this.queue.waitForItem(SCHEDULER_TICK_MS);
          continue;
        }
        // The same object may be queued again while its repair runs (a scan and the repair
        // list, or a later pass): two repairs at once would move its shards side by side.
        const id = `${item.bucket}/${item.key}`;
        for (let running = this.#inFlight.get(id); running !== undefined; running = this.#inFlight.get(id)) await running;
        // Stopped meanwhile: left unsettled, the item stays owed (a scan's checkpoint stays below it).
        if (this.#stopped) break;
        await this.#repair(item);
      }
    } finally {
      this.#workers -= 1;
    }
  }

  #repair(item: WorkItem): Promise<void> {
    const id = `${item.bucket}/${item.key}`;
    const running = this.#runRepair(item).finally(() => this.#inFlight.delete(id));
    this.#inFlight.set(id, running);
    return running;
  }

  async #runRepair(item: WorkItem): Promise<void> {
    let end: RepairEnd = "failed";
    try {
      const outcome = await repairObject(this.#repairContext(), { bucket: item.bucket, key: item.key, seeds: item.seeds, verify: item.verify });
      this.progress.record(outcome, item.verify);
      if (outcome.recordWritesFailed > 0) this.#repairList.enqueue(item.bucket, item.key, `healer: ${outcome.recordWritesFailed} record writes refused`);
      const settled = outcome.status === "repaired" || outcome.status === "healthy" || outcome.status === "absent";
      if (item.source === "failure" && settled) this.progress.riskResolved(item.spare, item.bytesToWrite);
      if (!settled && this.#running !== undefined && item.source === this.#running.job.kind) this.#running.degraded += 1;
      if (outcome.status !== "healthy" && outcome.status !== "absent") this.#options.logger.debug({ ...outcome, detail: outcome.detail.slice(0, 3) }, "object repaired");
      end = settled ? "done" : "left";
    } catch (error) {
      this.progress.failed(item.bucket, item.key, error);
      if (this.#running !== undefined) this.#running.degraded += 1;
      this.#options.logger.warn({ err: error, bucket: item.bucket, key: item.key }, "repair failed");
    } finally {
      item.settle?.(end);
      void this.#saveCheckpoint(false);
    }
  }

  // --- Scheduling ---------------------------------------------------------------------------

  #onDetector(events: readonly DetectorEvent[]): void {
    for (const event of events) this.#options.logger.warn(event, `${event.diskId === undefined ? "node" : "disk"} ${event.nodeId}${event.diskId === undefined ? "" : `/${event.diskId}`} is ${event.to}`);
    // A disk back from out (its node was down, or it had failed): shards rebuilt elsewhere
    // move back (reads of the map expect them there), and its stale copies are cleaned. A
    // node that was only suspect never left the placement: nothing moves.
    const out = this.detector.outDisks();
    const back = [...this.#lastOut].some((disk) => !out.has(disk));
    this.#lastOut = out;
    if (back) this.#persisted.rebalanceWanted += 1;
    const down = Object.fromEntries(this.detector.downNodes());
    if (!this.#detectOnly && (back || JSON.stringify(down) !== JSON.stringify(this.#persisted.down))) {
      this.#persisted.down = down;
      void this.#saveState();
    }
  }

  /** What should run now, by priority; undefined: nothing. */
  #desired(): { kind: ScanKind; basis: string } | undefined {
    if (!this.detector.settled) return undefined;
    const now = this.#now();
    const outKey = this.outKey();
    const retryDue = (kind: ScanKind): boolean => (this.#retryAt.get(kind) ?? Infinity) <= now;
    if (outKey !== "" && (this.#persisted.failureDoneFor !== outKey || retryDue("failure"))) return { kind: "failure", basis: outKey };
    const { rebalanceWanted, rebalanceDone } = this.#persisted;
    const generation = String(rebalanceWanted);
    if (rebalanceWanted > rebalanceDone || this.#requested.has("rebalance") || retryDue("rebalance")) return { kind: "rebalance", basis: generation };
    const last = this.#persisted.lastCompleted;
    if (this.#requested.has("scan") || now - (last.scan ?? this.startedAt) >= this.settings.scanIntervalMs) return { kind: "scan", basis: generation };
    if (this.#requested.has("scrub") || now - (last.scrub ?? this.startedAt) >= this.settings.scrubPeriodMs) return { kind: "scrub", basis: generation };
    return undefined;
  }

  async #schedule(): Promise<void> {
    const desired = this.#desired();
    const running = this.#running;
    if (running !== undefined) {
      const preempt = desired !== undefined && (PRIORITY[desired.kind] > PRIORITY[running.job.kind] || (desired.kind === running.job.kind && desired.basis !== running.job.basis && running.job.kind !== "scan" && running.job.kind !== "scrub"));
      if (preempt) running.abort.abort(new Error(`preempted by a ${desired.kind} scan`));
      else await this.#saveCheckpoint(false);
      return;
    }
    if (desired !== undefined) await this.#startJob(desired.kind, desired.basis);
  }

  async #startJob(kind: ScanKind, basis: string): Promise<void> {
    const saved = await this.#state.load<ScanCheckpoint | { done: true }>(`checkpoint/${kind}`).catch(() => undefined);
    const resume = saved !== undefined && "id" in saved && (saved.basis === basis || kind === "scan" || kind === "scrub") ? saved : undefined;
    // A scrub an operator asked for runs at the bandwidth limit; a periodic one is paced to its period.
    const paced = kind === "scrub" && !this.#requested.has("scrub");
    this.#requested.delete(kind);
    this.#retryAt.delete(kind);
    this.#vouched.clear();
    const job = new ScanJob(this.#scanEnvironment(kind, paced), { id: `${kind}-${this.#now()}`, kind, basis, startedAt: this.#now() }, resume);
    const abort = new AbortController();
    // Objects a resumed job left degraded before its checkpoint still make it incomplete.
    const running: Running = { job, abort, outKey: this.outKey(), degraded: resume?.degraded ?? 0, done: Promise.resolve() };
    this.#running = running;
    this.#lastJob = job;
    const record: JobRecord = { id: job.id, kind, resumed: job.resumed, startedAt: this.#now() };
    this.history.push(record);
    this.history.splice(0, Math.max(0, this.history.length - HISTORY_KEPT_MAX));
    this.#options.logger.info({ kind, basis, resumed: job.resumed, pass: job.pass }, "scan started");
    const done = this.#runJob(running)
      .then((outcome) => Object.assign(record, { outcome }))
      .finally(() => {
        Object.assign(record, { endedAt: this.#now(), scanned: job.scanned });
        if (this.#running === running) this.#running = undefined;
      });
    Object.assign(running, { done });
  }

  async #runJob(running: Running): Promise<JobRecord["outcome"]> {
    const { job, abort } = running;
    try {
      await job.run(abort.signal);
      while (!abort.signal.aborted && job.pendingItems > 0) await sleep(SCHEDULER_TICK_MS / 4);
    } catch (error) {
      if (!abort.signal.aborted) this.#options.logger.warn({ err: error, kind: job.kind }, "scan failed");
      await this.#saveCheckpoint(true);
      return abort.signal.aborted ? "aborted" : "failed";
    }
    if (abort.signal.aborted) {
      await this.#saveCheckpoint(true);
      return "aborted";
    }
    return (await this.#complete(running)) ? "completed" : "incomplete";
  }

  /** Records a finished job; false when some of its work is left for a retry. */
  async #complete(running: Running): Promise<boolean> {
    const { job } = running;
    const incomplete = job.listingErrors.length > 0 || running.degraded > 0;
    this.#persisted.lastCompleted[job.kind] = job.startedAt;
    if (job.kind === "failure") this.#persisted.failureDoneFor = job.basis;
    // A clean full scan checked every object a failure scan for the same out disks would.
    if (!incomplete && (job.kind === "scan" || job.kind === "rebalance") && running.outKey === this.outKey()) {
      this.#persisted.failureDoneFor = running.outKey;
      this.#retryAt.delete("failure");
      this.#retryDelay.delete("failure");
      this.#owe("failure", false);
    }
    // A clean failure scan or full scan leaves nothing known at risk (what was counted got repaired).
    if (!incomplete && job.kind !== "scrub" && running.outKey === this.outKey()) this.progress.resetRisk(new Map(), 0);
    if (job.kind === "rebalance" || job.kind === "scan") this.#persisted.rebalanceDone = Math.max(this.#persisted.rebalanceDone, Number(job.basis));
    const retryKind: ScanKind = job.kind === "failure" ? "failure" : "rebalance";
    if (incomplete) {
      // Nothing may be fixable until a node returns or the map changes (both start a new scan
      // at once), so retries back off instead of re-listing the cluster every few seconds.
      const delay = Math.min(RETRY_AFTER_MAX_MS, (this.#retryDelay.get(retryKind) ?? this.settings.retryAfterMs / 2) * 2);
      this.#retryDelay.set(retryKind, delay);
      this.#retryAt.set(retryKind, this.#now() + delay);
    } else {
      this.#retryDelay.delete(retryKind);
    }
    this.#owe(retryKind, incomplete);
    await this.#state.save(`checkpoint/${job.kind}`, { done: true });
    if (!incomplete && (job.kind === "scan" || job.kind === "rebalance")) await this.#checkRetired();
    await this.#saveState();
    this.#options.logger.info({ kind: job.kind, scanned: job.scanned, degraded: running.degraded, listingErrors: job.listingErrors.slice(0, 5) }, "scan completed");
    return !incomplete;
  }

  /** Notes in the persisted state whether a retry of `kind` is owed (saved with it). */
  #owe(kind: ScanKind, owed: boolean): void {
    const others = (this.#persisted.retriesOwed ?? []).filter((each) => each !== kind);
    this.#persisted.retriesOwed = owed ? [...others, kind] : others;
  }

  /**
   * A retired node is drained once no record on its disks names a shard there (reserved
   * buckets aside: repair entries and upload records left there are harmless). It is then
   * dropped from the persisted list: a restarted gateway no longer connects to it.
   */
  async #checkRetired(): Promise<void> {
    for (const retired of [...this.#persisted.retired]) {
      if (this.cluster.map.nodes.some((node) => node.id === retired.id)) continue;
      const disks = this.detector.status().find((node) => node.nodeId === retired.id)?.disks ?? [];
      if (disks.length === 0 || !disks.every((disk) => this.readable({ nodeId: retired.id, diskId: disk.diskId }))) continue;
      const holding = await Promise.all(disks.map((disk) => holdsObjects(this.cluster, { nodeId: retired.id, diskId: disk.diskId })));
      if (holding.some(Boolean)) continue;
      this.drained.add(retired.id);
      this.#persisted.retired = this.#persisted.retired.filter((node) => node.id !== retired.id);
      this.#options.logger.info({ node: retired.id }, "retired node drained: no object shards left on it; it can be stopped");
    }
  }

  /** Saves the running job's position, at most every checkpointIntervalMs unless forced; one save at a time. */
  async #saveCheckpoint(force: boolean): Promise<void> {
    const running = this.#running;
    if (running === undefined || this.#checkpointing || (!force && this.#now() - this.#lastCheckpoint < this.settings.checkpointIntervalMs)) return;
    this.#checkpointing = true;
    this.#lastCheckpoint = this.#now();
    try {
      const checkpoint: ScanCheckpoint = { ...running.job.checkpointState(), degraded: running.degraded };
      await this.#state.save(`checkpoint/${running.job.kind}`, checkpoint).catch(() => false);
    } finally {
      this.#checkpointing = false;
    }
  }

  async #saveState(): Promise<void> {
    await this.#state.save(STATE_DOCUMENT, this.#persisted).catch(() => false);
  }

  #scanEnvironment(kind: ScanKind, paced: boolean): ConstructorParameters<typeof ScanJob>[0] {
    const scrubStart = this.#now();
    let scrubbed = 0;
    return {
      cluster: this.cluster,
      queue: this.queue,
      readable: this.readable,
      placer: () => this.#placer(),
      listableDisks: () => this.listableDisks(),
      outDisks: () => this.detector.outDisks(),
      onScanned: (objects, bytes) => {
        this.progress.totals.objectsScanned += objects;
        this.progress.totals.bytesScanned += bytes;
      },
      onCounted: (counts, bytes) => this.progress.resetRisk(counts, bytes),
      onQueued: () => (this.progress.totals.objectsQueued += 1),
      sweep: async (disks, references, passStartedAt, signal) => {
        // A shard committed after the pass began may belong to a record the listing passed by.
        const olderThan = Math.min(passStartedAt, this.#now()) - this.settings.partialVersionGraceMs;
        for (const disk of disks) {
          const isProtected = (target: DiskRef, name: string): boolean => this.#vouched.has(`${target.nodeId}/${target.diskId} ${name}`);
          const removed = await sweepDisk(disk, { cluster: this.cluster, references, olderThan, isProtected, signal }).catch((error: unknown) => {
            this.#options.logger.warn({ err: error, disk }, "orphan shard sweep failed");
            return 0;
          });
          this.progress.totals.orphanShardsRemoved += removed;
        }
      },
      ...(paced
        ? {
            pace: async (bytes: number) => {
              scrubbed += bytes;
              const aheadMs = (scrubbed / this.#scrubBytesPerMs()) - (this.#now() - scrubStart);
              if (aheadMs > 0) await sleep(Math.min(aheadMs, SCHEDULER_TICK_MS));
            },
          }
        : {}),
    };
  }

  /** The scrub's planned pace: the cluster's object bytes over the scrub period. */
  #scrubBytesPerMs(): number {
    const { k, m } = this.cluster.map.ec;
    const used = this.detector.status().reduce((sum, node) => sum + node.disks.reduce((disks, disk) => disks + disk.usedBytes, 0), 0);
    return Math.max(1, (used * k) / (k + m) / this.settings.scrubPeriodMs);
  }

  async #pollRepairList(): Promise<void> {
    if (this.#repairListBusy || this.queue.size >= REPAIR_QUEUE_OBJECTS_MAX / 2) return;
    this.#repairListBusy = true;
    try {
      const now = this.#now();
      const waiting = (id: string): boolean => (this.#repairListRetry.get(id)?.at ?? 0) > now;
      const entries = await readRepairList(this.cluster, this.listableDisks(), { skip: (id) => this.#inFlight.has(id) || waiting(id) });
      const m = this.cluster.map.ec.m;
      for (const entry of entries) {
        const id = `${entry.bucket}/${entry.key}`;
        const seeds = [...entry.seen.values()].map((seen) => seen.disk);
        await this.queue.push({ bucket: entry.bucket, key: entry.key, spare: m - 1, size: 0, bytesToWrite: 0, seeds, verify: entry.verify, source: "repair-list", settle: (end) => this.#settleRepairEntry(id, entry, end) });
        this.progress.totals.objectsQueued += 1;
      }
    } finally {
      this.#repairListBusy = false;
    }
  }

  /**
   * A repair-list entry leaves the list only when its repair is done. One that left work (a
   * disk it needs is unreadable, a newer version blocks it) or threw stays, and is tried
   * again after a pause that doubles each time, so an object that cannot be repaired yet
   * neither is forgotten until the next scrub nor is retried on every poll.
   */
  #settleRepairEntry(id: string, entry: RepairListEntry, end: RepairEnd): void {
    if (end === "done") {
      this.#repairListRetry.delete(id);
      void removeRepairEntry(this.cluster, entry);
      return;
    }
    const delayMs = Math.min(RETRY_AFTER_MAX_MS, (this.#repairListRetry.get(id)?.delayMs ?? this.settings.retryAfterMs / 2) * 2);
    this.#repairListRetry.delete(id);
    this.#repairListRetry.set(id, { at: this.#now() + delayMs, delayMs });
    // Bounded like the work queue: the oldest pause forgotten only means an earlier retry.
    if (this.#repairListRetry.size > REPAIR_QUEUE_OBJECTS_MAX) this.#repairListRetry.delete(this.#repairListRetry.keys().next().value as string);
  }
}

/** True while a record of an S3 bucket (not a reserved one) names a shard on `disk`. */
async function holdsObjects(cluster: Cluster, disk: DiskRef): Promise<boolean> {
  const node = cluster.node(disk.nodeId);
  let cursor: string | undefined;
  do {
    const page = await node?.listRecordsByPlacement(disk.diskId, { nodeId: disk.nodeId, diskId: disk.diskId, limit: SCAN_PAGE_RECORDS, ...(cursor === undefined ? {} : { cursor }) }).catch(() => undefined);
    if (page === undefined) return true;
    if (page.records.some((record) => !record.bucket.startsWith("."))) return true;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return false;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
