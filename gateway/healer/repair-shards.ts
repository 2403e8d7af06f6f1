/**
 * Carrying out a plan's shard tasks for every shard set of the target version: a returning
 * disk's shard is verified and reused; a healthy shard that moves is copied (one read); a
 * lost or corrupt one is rebuilt from k others in one streaming pass per shard set (all the
 * set's lost indexes at once). A source that turns out corrupt mid-rebuild is itself rebuilt
 * in a second round. Small objects are rebuilt in memory, for their records.
 */
import type { ObjectRecord, ShardId, ShardLocation } from "../../core/storage-api.js";
import type { ShardTask } from "./plan.js";
import { rebuildShardSet } from "./rebuild.js";
import type { DiskRef } from "./gather.js";
import { copyShard, inlineShardValid, memoryShardSetIo, nodeShardSetIo, shardIdOf, shardSetsOf, verifyShard, type NodeIoContext, type ShardSet } from "./shard-io.js";

/** Rebuild rounds per shard set: the first, and one more for sources found corrupt meanwhile. */
const REBUILD_ROUNDS_MAX = 2;

export interface ShardWork {
  /** Indexes now healthy at their task's target disk, in every shard set. */
  readonly done: ReadonlySet<number>;
  readonly copied: number;
  readonly rebuilt: number;
  readonly reused: number;
  /** Indexes found corrupt or unreadable at their current disk while working. */
  readonly foundBad: ReadonlySet<number>;
  readonly errors: readonly string[];
  /** Small objects: each index's whole shard file, for its record. */
  readonly inline?: ReadonlyMap<number, Buffer>;
}

interface Tally {
  copied: number;
  rebuilt: number;
  reused: number;
  foundBad: Set<number>;
  errors: string[];
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Non-inline objects: every task in every shard set. */
export interface ShardTaskContext extends NodeIoContext {
  readonly onShardReused?: (disk: DiskRef, shard: ShardId) => void;
}

export async function runShardTasks(context: ShardTaskContext, record: ObjectRecord, current: readonly ShardLocation[], healthy: readonly number[], tasks: readonly ShardTask[]): Promise<ShardWork> {
  const tally: Tally = { copied: 0, rebuilt: 0, reused: 0, foundBad: new Set(), errors: [] };
  let done = new Set(tasks.map((task) => task.shardIndex));
  for (const set of shardSetsOf(record)) {
    const setDone = await runSet(context, record, set, { current, healthy, tasks, tally });
    done = new Set([...done].filter((index) => setDone.has(index)));
  }
  return { done, ...tally };
}

interface SetInput {
  readonly current: readonly ShardLocation[];
  readonly healthy: readonly number[];
  readonly tasks: readonly ShardTask[];
  readonly tally: Tally;
}

async function runSet(context: ShardTaskContext, record: ObjectRecord, set: ShardSet, input: SetInput): Promise<Set<number>> {
  const done = new Set<number>();
  const toRebuild: ShardTask[] = [];
  for (const task of input.tasks) {
    if (task.maybePresent && (await tryVerify(context, record, set, task.shardIndex, task.to))) {
      input.tally.reused += 1;
      context.onShardReused?.(task.to, shardIdOf(record, set, task.shardIndex));
      done.add(task.shardIndex);
    } else if (task.kind === "copy" && (await tryCopy(context, record, set, task, input.tally))) {
      done.add(task.shardIndex);
    } else {
      toRebuild.push(task);
    }
  }
  if (toRebuild.length > 0) for (const index of await rebuildRounds(context, record, set, toRebuild, input)) done.add(index);
  return done;
}

async function tryVerify(context: NodeIoContext, record: ObjectRecord, set: ShardSet, shardIndex: number, at: ShardLocation): Promise<boolean> {
  try {
    await verifyShard(context, record, set, shardIndex, at);
    return true;
  } catch {
    return false;
  }
}

async function tryCopy(context: NodeIoContext, record: ObjectRecord, set: ShardSet, task: ShardTask, tally: Tally): Promise<boolean> {
  try {
    await copyShard(context, record, set, task.shardIndex, task.from, task.to);
    tally.copied += 1;
    return true;
  } catch (error) {
    tally.errors.push(`copy of shard ${task.shardIndex} (part ${set.partNumber}) ${task.from.nodeId}/${task.from.diskId} -> ${task.to.nodeId}/${task.to.diskId}: ${describe(error)}`);
    tally.foundBad.add(task.shardIndex);
    return false;
  }
}

/** Rebuilds the tasks' shards; sources that fail are added to the unusable set and, where a task exists for them, rebuilt next round. */
async function rebuildRounds(context: NodeIoContext, record: ObjectRecord, set: ShardSet, tasks: readonly ShardTask[], input: SetInput): Promise<number[]> {
  const done: number[] = [];
  const unusable = new Set(input.current.map((location) => location.shardIndex).filter((index) => !input.healthy.includes(index)));
  let round = tasks;
  for (let attempt = 0; attempt < REBUILD_ROUNDS_MAX && round.length > 0; attempt++) {
    for (const task of round) unusable.add(task.shardIndex);
    const targets = new Map(round.map((task) => [task.shardIndex, task.to]));
    try {
      const result = await rebuildShardSet(nodeShardSetIo(context, record, set, input.current, targets), [...targets.keys()], unusable);
      done.push(...result.written);
      input.tally.rebuilt += result.written.length;
      for (const [index, why] of result.failed) input.tally.errors.push(`write of rebuilt shard ${index} (part ${set.partNumber}): ${why}`);
      for (const index of result.badSources) input.tally.foundBad.add(index);
      round = result.badSources.filter((index) => !done.includes(index)).flatMap((index) => {
        const location = input.current[index];
        return location === undefined ? [] : [{ shardIndex: index, kind: "rebuild" as const, from: location, to: location, maybePresent: false }];
      });
    } catch (error) {
      input.tally.errors.push(`rebuild of shards ${[...targets.keys()].join(",")} (part ${set.partNumber}): ${describe(error)}`);
      return done;
    }
  }
  return done;
}

/**
 * Small objects: the shards held in the target's records (checked), plus every missing one
 * rebuilt in memory. Returns all k + m shard files when at least k were held.
 */
export async function inlineShards(record: ObjectRecord, heldRecords: ReadonlyMap<number, ObjectRecord>): Promise<ShardWork> {
  const [set] = shardSetsOf(record);
  const tally: Tally = { copied: 0, rebuilt: 0, reused: 0, foundBad: new Set(), errors: [] };
  const width = record.ec.k + record.ec.m;
  const held = new Map<number, Buffer>();
  for (const [index, holder] of heldRecords) {
    if (set !== undefined && holder.inline !== undefined && inlineShardValid(holder.inline, set, index)) held.set(index, holder.inline);
    else tally.foundBad.add(index);
  }
  const missing = Array.from({ length: width }, (_, index) => index).filter((index) => !held.has(index));
  const all = new Map(held);
  if (set === undefined || held.size < record.ec.k) return { done: new Set(), ...tally, errors: [`${held.size} valid inline shards, ${record.ec.k} needed`] };
  if (missing.length > 0) {
    const result = await rebuildShardSet(memoryShardSetIo(set, held, all), missing, new Set(missing));
    tally.rebuilt += result.written.length;
  }
  return { done: new Set(all.keys()), ...tally, inline: all };
}
