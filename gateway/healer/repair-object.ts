/**
 * Repairing one key: gather its records, plan (plan.ts), do the shard work (repair-shards.ts),
 * then commit: write the target's record, with the new placement and a higher revision when
 * shards moved, to every disk that holds one of its shards; and only once a write quorum
 * holds that record, remove what it no longer names (moved-from shards, stale copies) and
 * the garbage versions. Shards are always written before a record names them, and removed
 * only after no newest record names them, so a reader always finds k shards where records
 * say they are.
 */
import { isTesseraError } from "../../core/errors.js";
import type { ObjectRecord, ShardId, ShardLocation } from "../../core/storage-api.js";
import type { Placer } from "../../placement/rendezvous.js";
import { recordQuorum } from "../objects/put-object.js";
import { isInline } from "../objects/get-object.js";
import { gatherRecords, type DiskRef } from "./gather.js";
import { planObject, type Garbage, type ObjectPlan, type VersionView } from "./plan.js";
import { inlineShards, runShardTasks, type ShardWork } from "./repair-shards.js";
import { shardIdOf, shardSetsOf, verifyShard, inlineShardValid, type NodeIoContext } from "./shard-io.js";
import { locationKey } from "./target-placement.js";

export interface RepairContext extends NodeIoContext {
  readonly readable: (disk: DiskRef) => boolean;
  /**
   * Out of the placement (a down node, a failed disk): what it holds is cleaned when it
   * returns (the rebalance), so an unreachable out disk is not work left for a retry.
   */
  readonly isOut?: (disk: DiskRef) => boolean;
  /** The placer of the healer's target map (undefined: too few disks to re-place anything). */
  readonly placer: () => Placer | undefined;
  readonly graceMs: number;
  readonly now?: () => number;
  /** A shard already on a disk was verified and kept (the orphan sweep must not take it). */
  readonly onShardReused?: (disk: DiskRef, shard: ShardId) => void;
}

export interface RepairRequest {
  readonly bucket: string;
  readonly key: string;
  /** Disks a scan saw the key on, read in addition to the map's placement. */
  readonly seeds?: readonly DiskRef[];
  /** Read every healthy shard first (a scrub, or a reported read failure). */
  readonly verify?: boolean;
  /** Plan and report only: change nothing. */
  readonly dryRun?: boolean;
}

export type RepairStatus = "healthy" | "repaired" | "degraded" | "blocked" | "absent";

export interface RepairOutcome {
  readonly bucket: string;
  readonly key: string;
  readonly status: RepairStatus;
  readonly versionId?: string;
  /** Object bytes of the target version (0 for a delete marker). */
  readonly size: number;
  readonly spareBefore: number;
  readonly spareAfter: number;
  readonly shardsRebuilt: number;
  readonly shardsCopied: number;
  readonly shardsReused: number;
  readonly corruptFound: number;
  readonly recordsWritten: number;
  /** Record writes a reachable disk refused: a gap a later scan may not find (healer.ts puts the object on the repair list). */
  readonly recordWritesFailed: number;
  readonly garbageRemoved: number;
  readonly detail: readonly string[];
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function repairObject(context: RepairContext, request: RepairRequest): Promise<RepairOutcome> {
  const now = (context.now ?? Date.now)();
  const seeds = [...context.cluster.place(request.bucket, request.key).locations, ...(request.seeds ?? [])];
  const reads = await gatherRecords(request.bucket, request.key, seeds, { cluster: context.cluster, readable: context.readable });
  const planInput = { bucket: request.bucket, key: request.key, reads, readable: context.readable, placer: context.placer(), now, graceMs: context.graceMs };
  let plan = planObject(planInput);
  let corruptFound = 0;
  if (request.verify === true && plan.target !== undefined && !plan.target.best.deleteMarker) {
    const bad = await findBadShards(context, plan.target, plan.healthy);
    corruptFound = bad.size;
    if (bad.size > 0) plan = planObject({ ...planInput, knownBad: new Map([[plan.target.versionId, bad]]) });
  }
  if (request.dryRun === true) return outcome(plan, { status: statusOf(plan), spareAfter: plan.spare, corruptFound });
  return carryOut(context, plan, corruptFound);
}

function statusOf(plan: ObjectPlan): RepairStatus {
  if (plan.blocked !== undefined) return "blocked";
  if (plan.target === undefined) return plan.garbage.length > 0 ? "repaired" : "absent";
  const work = plan.tasks.length + plan.recordGaps.length + plan.garbage.length + plan.pending.length;
  return work === 0 ? "healthy" : "degraded";
}

async function findBadShards(context: RepairContext, target: VersionView, healthy: readonly number[]): Promise<Set<number>> {
  const bad = new Set<number>();
  const { best } = target;
  for (const index of healthy) {
    const location = best.placement.find((each) => each.shardIndex === index);
    if (location === undefined) continue;
    if (best.inline !== undefined || target.holders.get(locationKey(location))?.record.inline !== undefined) {
      const shard = target.holders.get(locationKey(location))?.record.inline;
      const [set] = shardSetsOf(best);
      if (shard === undefined || set === undefined || !inlineShardValid(shard, set, index)) bad.add(index);
      continue;
    }
    for (const set of shardSetsOf(best)) {
      try {
        await verifyShard(context, best, set, index, location);
      } catch {
        bad.add(index);
        break;
      }
    }
  }
  return bad;
}

interface Totals {
  status: RepairStatus;
  spareAfter: number;
  corruptFound: number;
  work?: ShardWork;
  recordsWritten?: number;
  recordWritesFailed?: number;
  garbageRemoved?: number;
  detail?: string[];
}

function outcome(plan: ObjectPlan, totals: Totals): RepairOutcome {
  const best = plan.target?.best;
  return {
    bucket: plan.bucket,
    key: plan.key,
    status: totals.status,
    ...(best === undefined ? {} : { versionId: best.versionId }),
    size: best === undefined || best.deleteMarker ? 0 : best.size,
    spareBefore: plan.spare,
    spareAfter: totals.spareAfter,
    shardsRebuilt: totals.work?.rebuilt ?? 0,
    shardsCopied: totals.work?.copied ?? 0,
    shardsReused: totals.work?.reused ?? 0,
    corruptFound: totals.corruptFound + (totals.work?.foundBad.size ?? 0),
    recordsWritten: totals.recordsWritten ?? 0,
    recordWritesFailed: totals.recordWritesFailed ?? 0,
    garbageRemoved: totals.garbageRemoved ?? 0,
    detail: [...(plan.blocked === undefined ? [] : [plan.blocked]), ...(totals.work?.errors ?? []), ...(totals.detail ?? [])],
  };
}

/** Where each shard ends up: the wanted disk once its task is done; a delete marker has no shards to move. */
function finalPlacement(context: RepairContext, plan: ObjectPlan, target: VersionView, work: ShardWork): ShardLocation[] {
  return plan.current.map((location) => {
    const wanted = plan.wanted[location.shardIndex] as ShardLocation;
    if (target.best.deleteMarker) return context.readable(wanted) ? wanted : location;
    return work.done.has(location.shardIndex) ? wanted : location;
  });
}

async function carryOut(context: RepairContext, plan: ObjectPlan, corruptFound: number): Promise<RepairOutcome> {
  const target = plan.target;
  if (target === undefined) {
    const cleanup = await removeGarbage(context, plan.garbage, new Set());
    const status = statusOf(plan) === "absent" ? "absent" : cleanup.skipped === 0 ? "repaired" : "degraded";
    return outcome(plan, { status, spareAfter: 0, corruptFound, garbageRemoved: cleanup.removed });
  }
  if (statusOf(plan) === "healthy") return outcome(plan, { status: "healthy", spareAfter: plan.spare, corruptFound });
  const work = await shardWork(context, plan, target);
  const final = finalPlacement(context, plan, target, work);
  const commit = await commitRecord(context, plan, target, final, work);
  let removed = 0;
  let skipped = commit.skipped;
  const detail: string[] = [];
  if (commit.durable) {
    const moved = await removeMoved(context, plan, target, final);
    const garbage = await removeGarbage(context, plan.garbage, keptParts(plan, target), target.versionId);
    removed += moved.removed + garbage.removed;
    skipped += moved.skipped + garbage.skipped;
  } else {
    detail.push(`new record stored on ${commit.written} disks, fewer than the write quorum: old copies kept for the next pass`);
  }
  if (skipped > 0) detail.push(`${skipped} disks could not be reached for records or clean-up: left for the next pass`);
  const spareAfter = new Set([...plan.healthy.filter((index) => !work.foundBad.has(index)), ...work.done]).size - target.best.ec.k;
  const fullyDone = plan.pending.length === 0 && work.done.size === plan.tasks.length && commit.durable && commit.failed === 0 && skipped === 0;
  const status: RepairStatus = fullyDone ? "repaired" : "degraded";
  return outcome(plan, { status, spareAfter: target.best.deleteMarker ? plan.spare : spareAfter, corruptFound, work, recordsWritten: commit.written, recordWritesFailed: commit.failed, garbageRemoved: removed, detail });
}

async function shardWork(context: RepairContext, plan: ObjectPlan, target: VersionView): Promise<ShardWork> {
  const { best } = target;
  if (best.deleteMarker) return { done: new Set(plan.tasks.map((task) => task.shardIndex)), copied: 0, rebuilt: 0, reused: 0, foundBad: new Set(), errors: [] };
  if (!isInline(target)) return runShardTasks(context, best, plan.current, plan.healthy, plan.tasks);
  const held = new Map<number, ObjectRecord>();
  for (const index of plan.healthy) {
    const location = plan.current[index];
    const holder = location === undefined ? undefined : target.holders.get(locationKey(location));
    if (holder !== undefined) held.set(index, holder.record);
  }
  const shards = await inlineShards(best, held);
  // An inline "task" is done once its shard bytes exist: the record write carries them.
  return { ...shards, done: new Set(plan.tasks.map((task) => task.shardIndex).filter((index) => shards.inline?.has(index) === true)) };
}

interface Commit {
  readonly written: number;
  readonly failed: number;
  /** Disks that needed the record but could not be reached now. */
  readonly skipped: number;
  /** The record naming `final` is on at least the write quorum of disks (or nothing moved). */
  readonly durable: boolean;
}

async function commitRecord(context: RepairContext, plan: ObjectPlan, target: VersionView, final: readonly ShardLocation[], work: ShardWork): Promise<Commit> {
  const { best } = target;
  const moved = final.some((location, index) => locationKey(location) !== locationKey(plan.current[index] as ShardLocation));
  const maxRevision = Math.max(...[...target.holders.values()].map((holder) => holder.record.revision));
  const revision = moved ? maxRevision + 1 : best.revision;
  const { inline: _dropped, ...base } = best;
  const record: ObjectRecord = { ...base, revision, placement: final };
  const gaps = new Set(plan.recordGaps.map(locationKey));
  const rewrite = new Set([...work.done].map((index) => locationKey(final[index] as ShardLocation)));
  const needed = final.filter((location) => moved || gaps.has(locationKey(location)) || rewrite.has(locationKey(location)) || target.holders.get(locationKey(location))?.record.revision !== revision);
  const disks = needed.filter((location) => context.readable(location));
  const results = await Promise.allSettled(
    disks.map(async (location) => {
      const shard = work.inline?.get(location.shardIndex);
      if (best.inline !== undefined || work.inline !== undefined) {
        if (shard === undefined) throw new Error(`no inline shard ${location.shardIndex}`);
        return context.cluster.node(location.nodeId)?.putRecord(location.diskId, { ...record, inline: shard });
      }
      return context.cluster.node(location.nodeId)?.putRecord(location.diskId, record);
    }),
  );
  const written = results.filter((result) => result.status === "fulfilled").length;
  const alreadyHeld = moved ? 0 : final.filter((location) => context.readable(location) && !disks.includes(location)).length;
  return { written, failed: disks.length - written, skipped: needed.length - disks.length, durable: !moved || written + alreadyHeld >= recordQuorum(best.ec) };
}

interface Cleanup {
  readonly removed: number;
  /** Disks holding something to remove that could not be reached now. */
  readonly skipped: number;
}

/** Shards left behind by moves, and stale shard indexes on disks that now hold another one. */
async function removeMoved(context: RepairContext, plan: ObjectPlan, target: VersionView, final: readonly ShardLocation[]): Promise<Cleanup> {
  const finalByDisk = new Map(final.map((location) => [locationKey(location), location.shardIndex]));
  let removed = 0;
  let skipped = 0;
  for (const from of plan.current) {
    const to = final[from.shardIndex] as ShardLocation;
    if (locationKey(to) === locationKey(from)) continue;
    if (!context.readable(from)) {
      if (context.isOut?.(from) !== true) skipped += 1;
      continue;
    }
    const stays = finalByDisk.get(locationKey(from));
    removed += await deleteShardsAt(context, target.best, from, from.shardIndex, new Set());
    if (stays === undefined) await deleteRecordQuietly(context, from, target.best);
  }
  for (const [diskKey, holder] of target.holders) {
    const keep = finalByDisk.get(diskKey);
    if (keep === undefined || !context.readable(holder.disk)) continue;
    for (const location of holder.record.placement) {
      if (locationKey(location) === diskKey && location.shardIndex !== keep) removed += await deleteShardsAt(context, target.best, holder.disk, location.shardIndex, new Set());
    }
  }
  return { removed, skipped };
}

/** Parts the target (or anything newer) lists: an older version's record may list the same parts. */
function keptParts(plan: ObjectPlan, target: VersionView): Set<string> {
  void plan;
  return new Set(target.best.parts.map((part) => part.partVersionId));
}

/**
 * Garbage: each holder's record and the shards it names on its disk; and for a garbage
 * version (superseded, or a failed write) the shards at every disk of its placement too,
 * which may hold a shard whose record never got written.
 */
async function removeGarbage(context: RepairContext, garbage: readonly Garbage[], kept: ReadonlySet<string>, targetVersionId?: string): Promise<Cleanup> {
  let removed = 0;
  let skipped = 0;
  const placements = new Map<string, ObjectRecord>();
  for (const item of garbage) {
    if (!context.readable(item.disk)) {
      if (context.isOut?.(item.disk) !== true) skipped += 1;
      continue;
    }
    const { record } = item;
    // A stale copy of the target itself names disks the target still uses: only its own disk is cleaned.
    if (record.versionId !== targetVersionId) placements.set(record.versionId, record);
    for (const location of record.placement) {
      if (locationKey(location) === locationKey(item.disk)) await deleteShardsAt(context, record, item.disk, location.shardIndex, kept);
    }
    if (await deleteRecordQuietly(context, item.disk, record)) removed += 1;
  }
  for (const record of placements.values()) {
    for (const location of record.placement) if (context.readable(location)) await deleteShardsAt(context, record, location, location.shardIndex, kept).catch(() => 0);
  }
  return { removed, skipped };
}

async function deleteShardsAt(context: RepairContext, record: ObjectRecord, disk: DiskRef, shardIndex: number, kept: ReadonlySet<string>): Promise<number> {
  if (record.deleteMarker || record.inline !== undefined) return 0;
  const node = context.cluster.node(disk.nodeId);
  let removed = 0;
  for (const set of shardSetsOf(record)) {
    if (set.partNumber > 0 && kept.has(set.versionId)) continue;
    try {
      if (await node?.deleteShard(disk.diskId, shardIdOf(record, set, shardIndex))) removed += 1;
    } catch (error) {
      if (!isTesseraError(error, "ERR_NOT_FOUND")) throw error;
    }
  }
  return removed;
}

async function deleteRecordQuietly(context: RepairContext, disk: DiskRef, record: ObjectRecord): Promise<boolean> {
  try {
    return (await context.cluster.node(disk.nodeId)?.deleteRecord(disk.diskId, record.bucket, record.key, record.versionId)) ?? false;
  } catch (error) {
    void describe(error);
    return false;
  }
}
