/**
 * What one key needs, decided from its records alone (no I/O here). The version readers
 * serve is the target: the newest delete marker, or the newest version with at least k
 * healthy shards. A newer version that may have been acknowledged but is unreadable blocks
 * everything (nothing older may be touched); a newer one that cannot have been acknowledged
 * (its records plus the silent disks stay below the write quorum) is garbage once older than
 * the grace period. Versions older than the target are garbage (newest wins everywhere).
 *
 * A shard of the target is healthy when its disk is readable now, a record of the version
 * on that disk names that shard there (records are written only after their shards are
 * committed), and no read found it corrupt. Each shard then either stays, is copied (healthy
 * but off the target placement), or is rebuilt from k others (lost or corrupt).
 */
import { assert } from "../../core/assert.js";
import { decodeShardHeader } from "../../core/shard-format.js";
import type { ObjectRecord, ShardLocation } from "../../core/storage-api.js";
import type { Placer } from "../../placement/rendezvous.js";
import { recordQuorum } from "../objects/put-object.js";
import type { DiskRecords, DiskRef } from "./gather.js";
import { locationKey, placementByIndex, targetPlacement } from "./target-placement.js";

export interface Holder {
  readonly disk: DiskRef;
  readonly record: ObjectRecord;
}

export interface VersionView {
  readonly versionId: string;
  /** The record with the highest revision seen: it names where the shards really are. */
  readonly best: ObjectRecord;
  /** Each disk's own record of this version, by disk key. */
  readonly holders: ReadonlyMap<string, Holder>;
}

export interface ShardTask {
  readonly shardIndex: number;
  /** copy: the shard is healthy where it is, and moves; rebuild: reconstruct it from k others. */
  readonly kind: "copy" | "rebuild";
  readonly from: ShardLocation;
  readonly to: ShardLocation;
  /** A record on the target disk already names this shard there (a returning disk): verify it first. */
  readonly maybePresent: boolean;
}

export interface Garbage {
  readonly disk: DiskRef;
  readonly record: ObjectRecord;
  readonly why: string;
}

export interface ObjectPlan {
  readonly bucket: string;
  readonly key: string;
  readonly target?: VersionView;
  /** Why nothing can be done for this key now. */
  readonly blocked?: string;
  /** Target shard indexes that are healthy now. */
  readonly healthy: readonly number[];
  /** healthy - k: how many more shards the object can lose (negative: unreadable). */
  readonly spare: number;
  readonly tasks: readonly ShardTask[];
  /** Indexes that need work that cannot be done now (their target disk is not readable). */
  readonly pending: readonly number[];
  /** The target's current placement by shard index, and where the healer wants each shard. */
  readonly current: readonly ShardLocation[];
  readonly wanted: readonly ShardLocation[];
  /** Readable disks of `wanted` whose record of the target is missing or older. */
  readonly recordGaps: readonly DiskRef[];
  readonly garbage: readonly Garbage[];
}

export interface PlanInput {
  readonly bucket: string;
  readonly key: string;
  readonly reads: ReadonlyMap<string, DiskRecords>;
  readonly readable: (disk: DiskRef) => boolean;
  readonly placer: Placer | undefined;
  /** Shard indexes found corrupt or missing by a read, per version id. */
  readonly knownBad?: ReadonlyMap<string, ReadonlySet<number>>;
  readonly now: number;
  readonly graceMs: number;
}

/** Versions of the key, newest first, each with its best record and its holders. */
export function versionsOf(reads: ReadonlyMap<string, DiskRecords>): VersionView[] {
  const byId = new Map<string, { best: ObjectRecord; holders: Map<string, Holder> }>();
  for (const [diskKey, read] of reads) {
    for (const record of read.records ?? []) {
      const entry = byId.get(record.versionId) ?? { best: record, holders: new Map<string, Holder>() };
      if (record.revision > entry.best.revision) entry.best = record;
      entry.holders.set(diskKey, { disk: read.disk, record });
      byId.set(record.versionId, entry);
    }
  }
  return [...byId.entries()].sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0)).map(([versionId, entry]) => ({ versionId, ...entry }));
}

/** The shard index held inline by a record, or undefined if its bytes are not a shard header. */
function inlineIndex(record: ObjectRecord): number | undefined {
  if (record.inline === undefined) return undefined;
  try {
    return decodeShardHeader(record.inline).shardIndex;
  } catch {
    return undefined;
  }
}

/** (shard index at disk) pairs that some holder's own record vouches for. */
function presentShards(version: VersionView): Set<string> {
  const present = new Set<string>();
  for (const [diskKey, holder] of version.holders) {
    const inline = holder.record.inline === undefined ? undefined : inlineIndex(holder.record);
    for (const location of holder.record.placement) {
      if (locationKey(location) !== diskKey) continue;
      if (holder.record.inline !== undefined && inline !== location.shardIndex) continue;
      present.add(`${location.shardIndex}@${diskKey}`);
    }
  }
  return present;
}

export function healthyShards(version: VersionView, input: Pick<PlanInput, "readable" | "knownBad">): number[] {
  const placement = placementByIndex(version.best);
  if (placement === undefined) return [];
  const present = presentShards(version);
  const bad = input.knownBad?.get(version.versionId);
  return placement
    .filter((location) => input.readable(location) && present.has(`${location.shardIndex}@${locationKey(location)}`) && bad?.has(location.shardIndex) !== true)
    .map((location) => location.shardIndex);
}

function unansweredIn(version: VersionView, reads: ReadonlyMap<string, DiskRecords>): number {
  return version.best.placement.filter((location) => reads.get(locationKey(location))?.records === undefined).length;
}

interface Choice {
  readonly target?: VersionView;
  readonly blocked?: string;
  readonly partial: readonly VersionView[];
}

/** The version readers serve, and the newer ones that are failed writes. */
function chooseTarget(versions: readonly VersionView[], input: PlanInput): Choice {
  const partial: VersionView[] = [];
  for (const version of versions) {
    const { best } = version;
    if (best.deleteMarker) return { target: version, partial };
    if (placementByIndex(best) === undefined) return { blocked: `version ${version.versionId} has a malformed placement (${best.placement.length} entries)`, partial };
    if (healthyShards(version, input).length >= best.ec.k) return { target: version, partial };
    const unanswered = unansweredIn(version, input.reads);
    if (version.holders.size + unanswered >= recordQuorum(best.ec)) {
      return { blocked: `version ${version.versionId} may have been acknowledged but has ${healthyShards(version, input).length} healthy shards of the k = ${best.ec.k} needed (${unanswered} disks silent)`, partial };
    }
    if (unanswered === 0 && input.now - best.lastModified > input.graceMs) partial.push(version);
  }
  return { partial };
}

function garbageOf(version: VersionView, why: string): Garbage[] {
  return [...version.holders.values()].map((holder) => ({ disk: holder.disk, record: holder.record, why }));
}

export function planObject(input: PlanInput): ObjectPlan {
  const versions = versionsOf(input.reads);
  const choice = chooseTarget(versions, input);
  const garbage = choice.partial.flatMap((version) => garbageOf(version, "a failed write (too few records to have been acknowledged)"));
  const empty = { bucket: input.bucket, key: input.key, healthy: [], spare: 0, tasks: [], pending: [], current: [], wanted: [], recordGaps: [] };
  if (choice.target === undefined) return { ...empty, garbage, ...(choice.blocked === undefined ? {} : { blocked: choice.blocked }) };
  const target = choice.target;
  for (const older of versions.filter((version) => version.versionId < target.versionId)) garbage.push(...garbageOf(older, `superseded by ${target.versionId}`));
  const current = placementByIndex(target.best);
  if (current === undefined) return { ...empty, target, garbage, blocked: `delete marker ${target.versionId} has a malformed placement` };
  const wanted = targetPlacement(input.placer, target.best) ?? current;
  garbage.push(...staleHolders(target, wanted));
  const healthy = healthyShards(target, input);
  const { tasks, pending } = target.best.deleteMarker ? { tasks: [], pending: [] } : shardTasks(target, current, wanted, healthy, input);
  return {
    bucket: input.bucket,
    key: input.key,
    target,
    healthy,
    spare: healthy.length - target.best.ec.k,
    tasks,
    pending,
    current,
    wanted,
    recordGaps: recordGaps(target, wanted, input),
    garbage,
  };
}

/** Holders of the target whose disk the target will not use: their record and shards go. */
function staleHolders(target: VersionView, wanted: readonly ShardLocation[]): Garbage[] {
  const keep = new Set([...wanted, ...target.best.placement].map(locationKey));
  return [...target.holders.entries()].filter(([diskKey]) => !keep.has(diskKey)).map(([, holder]) => ({ disk: holder.disk, record: holder.record, why: "a stale copy: the version's shards are elsewhere" }));
}

function shardTasks(target: VersionView, current: readonly ShardLocation[], wanted: readonly ShardLocation[], healthy: readonly number[], input: PlanInput): { tasks: ShardTask[]; pending: number[] } {
  const present = presentShards(target);
  const tasks: ShardTask[] = [];
  const pending: number[] = [];
  for (const from of current) {
    const to = wanted[from.shardIndex];
    assert(to !== undefined && to.shardIndex === from.shardIndex, "wanted placement has every shard index");
    const isHealthy = healthy.includes(from.shardIndex);
    const moves = locationKey(to) !== locationKey(from);
    if (isHealthy && !moves) continue;
    if (!input.readable(to)) {
      pending.push(from.shardIndex);
      continue;
    }
    const maybePresent = moves && present.has(`${from.shardIndex}@${locationKey(to)}`);
    tasks.push({ shardIndex: from.shardIndex, kind: isHealthy ? "copy" : "rebuild", from, to, maybePresent });
  }
  return { tasks, pending };
}

function recordGaps(target: VersionView, wanted: readonly ShardLocation[], input: PlanInput): DiskRef[] {
  return wanted.filter((location) => {
    if (!input.readable(location)) return false;
    const holder = target.holders.get(locationKey(location));
    return holder === undefined || holder.record.revision < target.best.revision;
  });
}
