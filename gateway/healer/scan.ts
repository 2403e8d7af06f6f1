/**
 * A scan job: a merge of placement listings (record-merge.ts), each key checked from what the
 * listings show (which disks hold which version, at which revision), and each key with a
 * problem queued for repair at its risk level. Kinds:
 *
 *   failure    listings of every readable disk for the out disks: every object with a shard
 *              on a lost disk. A count pass first (objects at risk by spare count, bytes to
 *              write: the ETA), then one pass per spare level, fewest spare first, so an object
 *              with 0 spare shards is repaired before any object with 1.
 *   scan       every readable disk's own records: missing or stale records, shards on out
 *   rebalance  disks, shards off their target placement (after a map change or a return),
 *              superseded versions left behind (a node that missed a delete or overwrite).
 *   scrub      like scan, but every object is queued to have every shard read and verified.
 *
 * Resumable: the position is checkpointed below the oldest key not yet done, with a cursor
 * per listing, so a restarted healer continues where this one stopped.
 */
import type { ObjectRecord } from "../../core/storage-api.js";
import type { Placer } from "../../placement/rendezvous.js";
import type { Cluster } from "../objects/cluster.js";
import type { DiskRef } from "./gather.js";
import { SCAN_PAGE_RECORDS } from "./limits.js";
import { RecordMerge, compareRecords, listingId, positionOf, type Group, type ListingSpec, type RecordPosition } from "./record-merge.js";
import { ShardReferences } from "./orphan-sweep.js";
import { locationKey, placementByIndex, targetPlacement } from "./target-placement.js";
import type { WorkItem, WorkQueue, WorkSource } from "./work-queue.js";

export type ScanKind = "failure" | "scan" | "rebalance" | "scrub";

/** What a checkpoint holds: enough to resume the same job after a restart. */
export interface ScanCheckpoint {
  readonly id: string;
  readonly kind: ScanKind;
  readonly startedAt: number;
  /** The out disks a failure job was started for (sorted), or the map epoch of others. */
  readonly basis: string;
  readonly pass: number;
  readonly watermark?: RecordPosition;
  readonly cursors: Record<string, string | undefined>;
  readonly scanned: number;
  /**
   * Objects the job left degraded before this checkpoint (they are behind the watermark, so
   * a resumed job does not see them again): the resumed job still ends incomplete and owes a
   * retry. Saved by the healer; absent in checkpoints of older versions.
   */
  readonly degraded?: number;
}

export interface ScanEnvironment {
  readonly cluster: Cluster;
  readonly queue: WorkQueue;
  readonly readable: (disk: DiskRef) => boolean;
  readonly placer: () => Placer | undefined;
  /** Every disk that can be listed now (the map's and retired nodes'). */
  readonly listableDisks: () => DiskRef[];
  readonly outDisks: () => ReadonlySet<string>;
  readonly onScanned: (objects: number, bytes: number) => void;
  readonly onCounted?: (counts: ReadonlyMap<number, number>, bytes: number) => void;
  readonly onQueued: (item: WorkItem) => void;
  readonly onSettled?: (item: WorkItem) => void;
  /** Pacing (scrub): called after each key with the bytes it stands for. */
  readonly pace?: (bytes: number) => Promise<void>;
  /**
   * After a full pass of a scan or rebalance that listed every disk from the start without
   * an error: remove the shards no record names (orphan-sweep.ts).
   */
  readonly sweep?: (disks: readonly DiskRef[], references: ShardReferences, passStartedAt: number, signal: AbortSignal) => Promise<void>;
}

interface Versions {
  readonly bucket: string;
  readonly key: string;
  readonly groups: Group[];
}

/** What the listings say about one key. */
export interface KeyCheck {
  readonly spare: number;
  readonly problem: boolean;
  readonly size: number;
  readonly bytesToWrite: number;
  readonly seeds: readonly DiskRef[];
}

function shardBytesOf(record: ObjectRecord): number {
  return record.deleteMarker ? 0 : Math.ceil(record.size / record.ec.k);
}

/** The quick check of one key from its sightings (no reads). */
export function checkKey(versions: Versions, environment: Pick<ScanEnvironment, "readable" | "placer">): KeyCheck {
  const newest = versions.groups[0];
  const sightings = newest?.sightings ?? [];
  const seeds = versions.groups.flatMap((group) => group.sightings.map((sighting) => sighting.disk));
  const best = sightings.reduce<ObjectRecord | undefined>((found, sighting) => (found === undefined || sighting.record.revision > found.revision ? sighting.record : found), undefined);
  if (best === undefined) return { spare: 0, problem: false, size: 0, bytesToWrite: 0, seeds };
  const placement = placementByIndex(best);
  const width = best.ec.k + best.ec.m;
  if (placement === undefined) return { spare: 0, problem: true, size: best.size, bytesToWrite: 0, seeds };
  const holders = new Map(sightings.map((sighting) => [locationKey(sighting.disk), sighting.record]));
  const healthy = placement.filter((location) => {
    const holder = holders.get(locationKey(location));
    return environment.readable(location) && holder !== undefined && holder.placement.some((own) => own.shardIndex === location.shardIndex && locationKey(own) === locationKey(location));
  }).length;
  const target = targetPlacement(environment.placer(), best) ?? placement;
  const moves = target.filter((location, index) => locationKey(location) !== locationKey(placement[index] as ShardLike)).length;
  const stale = sightings.some((sighting) => sighting.record.revision < best.revision);
  const missing = width - healthy;
  const problem = missing > 0 || moves > 0 || stale || versions.groups.length > 1;
  const spare = best.deleteMarker ? best.ec.m : healthy - best.ec.k;
  return { spare, problem, size: best.deleteMarker ? 0 : best.size, bytesToWrite: (missing + moves) * shardBytesOf(best), seeds };
}

type ShardLike = Pick<ObjectRecord["placement"][number], "nodeId" | "diskId">;

/**
 * Which objects a pass queues: the count pass none; failure passes one spare level each.
 * A resumed pass also takes every object below its level. The repair in flight when the last
 * healer stopped may have stopped mid-commit: disks that took its new record no longer list
 * it for the out disk, so the listing shows only the old records and the object looks riskier
 * than it was when an earlier pass (now behind the resumed one) would have taken it.
 */
function passAccepts(kind: ScanKind, pass: number, spare: number, m: number, resumed: boolean): boolean {
  if (kind !== "failure") return true;
  if (pass === 0) return false;
  const level = pass - 1;
  if (level >= m) return resumed || spare >= m;
  if (level === 0 || resumed) return spare <= level;
  return spare === level;
}

export function passCount(kind: ScanKind, m: number): number {
  return kind === "failure" ? m + 2 : 1;
}

export class ScanJob {
  readonly id: string;
  readonly kind: ScanKind;
  readonly basis: string;
  readonly startedAt: number;
  #pass: number;
  #resumeFrom: RecordPosition | undefined;
  #cursors: Record<string, string | undefined>;
  #scanned: number;
  readonly resumed: boolean;
  /** The pass a resumed job started in (it takes more: passAccepts). */
  readonly #resumedPass: number | undefined;
  readonly #environment: ScanEnvironment;
  /** Keys queued by this job and not yet done, by id, with their position and pass. */
  readonly #pending = new Map<string, { readonly position: RecordPosition; readonly pass: number }>();
  #position: RecordPosition | undefined;
  #merge: RecordMerge | undefined;
  readonly listingErrors: string[] = [];

  constructor(environment: ScanEnvironment, start: { id: string; kind: ScanKind; basis: string; startedAt: number }, resume?: ScanCheckpoint) {
    this.#environment = environment;
    this.id = resume?.id ?? start.id;
    this.kind = start.kind;
    this.basis = start.basis;
    this.startedAt = resume?.startedAt ?? start.startedAt;
    this.#pass = resume?.pass ?? 0;
    this.#resumeFrom = resume?.watermark;
    this.#cursors = resume?.cursors ?? {};
    this.#scanned = resume?.scanned ?? 0;
    this.resumed = resume !== undefined;
    this.#resumedPass = resume?.pass;
  }

  get pass(): number {
    return this.#pass;
  }

  get passes(): number {
    return passCount(this.kind, this.#environment.cluster.map.ec.m);
  }

  get scanned(): number {
    return this.#scanned;
  }

  get position(): RecordPosition | undefined {
    return this.#position;
  }

  get pendingItems(): number {
    return this.#pending.size;
  }

  /**
   * Where a resumed job starts: the earliest pass with a key not yet done, at the oldest such
   * key of that pass (the current pass also at the current position). Listing cursors are
   * kept only when that is the current pass; an earlier pass is re-listed from its start,
   * skipping the keys before the watermark.
   */
  resumePoint(): { pass: number; watermark?: RecordPosition } {
    const pass = Math.min(this.#pass, ...[...this.#pending.values()].map((pending) => pending.pass));
    let lowest = pass === this.#pass ? this.#position : undefined;
    for (const pending of this.#pending.values()) {
      if (pending.pass === pass && (lowest === undefined || compareRecords(pending.position, lowest) < 0)) lowest = pending.position;
    }
    return { pass, ...(lowest === undefined ? {} : { watermark: lowest }) };
  }

  checkpointState(): ScanCheckpoint {
    const { pass, watermark } = this.resumePoint();
    const cursors = pass === this.#pass ? (this.#merge?.cursors(watermark) ?? this.#cursors) : {};
    return { id: this.id, kind: this.kind, startedAt: this.startedAt, basis: this.basis, pass, ...(watermark === undefined ? {} : { watermark }), cursors, scanned: this.#scanned };
  }

  #specs(): ListingSpec[] {
    const listable = this.#environment.listableDisks();
    const placements = this.kind === "failure" ? [...this.#environment.outDisks()].map(parseDiskKey) : undefined;
    const specs = listable.flatMap((listing) => (placements ?? [listing]).map((placement) => ({ listing, placement })));
    return specs.map((spec) => {
      const cursor = this.#cursors[listingId(spec)];
      return cursor === undefined ? spec : { ...spec, cursor };
    });
  }

  /** Runs the remaining passes; resolves when every key is queued (not yet repaired). */
  async run(signal: AbortSignal): Promise<void> {
    for (; this.#pass < this.passes; this.#pass++) {
      await this.#runPass(signal);
      this.#cursors = {};
      this.#resumeFrom = undefined;
      this.#position = undefined;
      this.#merge = undefined;
    }
  }

  async #runPass(signal: AbortSignal): Promise<void> {
    const passStartedAt = Date.now();
    const specs = this.#specs();
    const merge = new RecordMerge(this.#environment.cluster, specs, SCAN_PAGE_RECORDS);
    this.#merge = merge;
    // Only a pass that lists every disk from its start sees every record: only it may sweep.
    const fromStart = this.#resumeFrom === undefined && Object.keys(this.#cursors).length === 0;
    const references = (this.kind === "scan" || this.kind === "rebalance") && fromStart && this.#environment.sweep !== undefined ? new ShardReferences() : undefined;
    const counts = new Map<number, number>();
    let countedBytes = 0;
    let current: Versions | undefined;
    const finish = async (versions: Versions): Promise<void> => {
      const check = await this.#handle(versions, signal);
      if (check !== undefined && this.kind === "failure" && this.#pass === 0 && check.problem) {
        counts.set(check.spare, (counts.get(check.spare) ?? 0) + 1);
        countedBytes += check.bytesToWrite;
      }
    };
    for await (const group of merge.groups()) {
      if (signal.aborted) return;
      for (const sighting of group.sightings) references?.add(sighting.record);
      if (this.#resumeFrom !== undefined && compareRecords(group.position, this.#resumeFrom) < 0) continue;
      if (current !== undefined && current.bucket === group.position.bucket && current.key === group.position.key) {
        current.groups.push(group);
        continue;
      }
      if (current !== undefined) await finish(current);
      current = { bucket: group.position.bucket, key: group.position.key, groups: [group] };
    }
    if (current !== undefined && !signal.aborted) await finish(current);
    const errors = merge.errors();
    this.listingErrors.push(...errors);
    if (this.kind === "failure" && this.#pass === 0 && !signal.aborted) this.#environment.onCounted?.(counts, countedBytes);
    if (references !== undefined && errors.length === 0 && !signal.aborted) await this.#environment.sweep?.(specs.map((spec) => spec.listing), references, passStartedAt, signal);
  }

  async #handle(versions: Versions, signal: AbortSignal): Promise<KeyCheck | undefined> {
    const first = versions.groups[0];
    if (first === undefined || versions.bucket.startsWith(".")) return undefined;
    this.#position = first.position;
    const check = checkKey(versions, this.#environment);
    const countsAsScan = this.kind !== "failure" || this.#pass === 0;
    if (countsAsScan) {
      this.#scanned += 1;
      this.#environment.onScanned(1, check.size);
    }
    const scrub = this.kind === "scrub";
    if ((check.problem || scrub) && passAccepts(this.kind, this.#pass, check.spare, this.#environment.cluster.map.ec.m, this.#pass === this.#resumedPass)) await this.#queue(versions, check, signal);
    if (scrub) await this.#environment.pace?.(check.size);
    return check;
  }

  async #queue(versions: Versions, check: KeyCheck, signal: AbortSignal): Promise<void> {
    const id = `${versions.bucket}/${versions.key}`;
    const first = versions.groups[0] as Group;
    this.#pending.set(id, { position: positionOf(first.position), pass: this.#pass });
    const source: WorkSource = this.kind;
    const item: WorkItem = {
      bucket: versions.bucket,
      key: versions.key,
      spare: check.spare,
      size: check.size,
      bytesToWrite: check.bytesToWrite,
      seeds: check.seeds,
      verify: this.kind === "scrub",
      source,
      settle: () => {
        this.#pending.delete(id);
        this.#environment.onSettled?.(item);
      },
    };
    this.#environment.onQueued(item);
    await this.#environment.queue.push(item, signal);
  }
}

export function parseDiskKey(key: string): DiskRef {
  const slash = key.indexOf("/");
  return { nodeId: key.slice(0, slash), diskId: key.slice(slash + 1) };
}
