/**
 * listShards for both adapters: every committed shard of a disk in the order of its name
 * `<objectId>/<versionId>.<partNumber>.<shardIndex>` (byte order), a page at a time, the
 * cursor being the last name returned. The local node walks its shard directories (one
 * readdir per directory, one stat per shard); the memory node sorts its keys.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { requireArgument } from "../core/errors.js";
import type { ShardId, ShardListing, ShardListPage, ShardListQuery } from "../core/storage-api.js";
import { isMissing, type Disk } from "./disk.js";
import { clampLimit } from "./record-rules.js";

/** Shards per page at most: a page is one JSON answer of about 150 bytes per shard. */
export const SHARD_LIST_LIMIT_MAX = 1000;
const NAME_PATTERN = /^([0-9a-f]{32})\/([0-9a-f]{32})\.([0-9]{1,5})\.([0-9]{1,2})$/;
const OBJECT_DIR_PATTERN = /^[0-9a-f]{32}$/;
const PREFIX_DIR_PATTERN = /^[0-9a-f]{2}$/;

export function shardName(shard: ShardId): string {
  return `${shard.objectId}/${shard.versionId}.${shard.partNumber}.${shard.shardIndex}`;
}

/** The shard a name stands for, or undefined if the name is not of the layout. */
export function parseShardName(name: string): ShardId | undefined {
  const match = NAME_PATTERN.exec(name);
  if (match === null) return undefined;
  return { objectId: match[1] as string, versionId: match[2] as string, partNumber: Number(match[3]), shardIndex: Number(match[4]) };
}

export interface ListParams {
  readonly after: string | undefined;
  readonly limit: number;
}

export function listParams(query: ShardListQuery): ListParams {
  const cursor = query.cursor;
  requireArgument(cursor === undefined || parseShardName(cursor) !== undefined, "cursor", "must be a cursor returned by a previous page");
  return { after: cursor, limit: clampLimit(query.limit, SHARD_LIST_LIMIT_MAX) };
}

/** A page of `names` (sorted, unique) after the cursor; `describe` gives each one's size and time. */
export async function pageOf(names: Iterable<string>, params: ListParams, describe: (name: string, shard: ShardId) => Promise<Omit<ShardListing, "shard"> | undefined>): Promise<ShardListPage> {
  const shards: ShardListing[] = [];
  for (const name of names) {
    if (params.after !== undefined && name <= params.after) continue;
    const shard = parseShardName(name);
    if (shard === undefined) continue;
    if (shards.length === params.limit) return { shards, nextCursor: shardName((shards[shards.length - 1] as ShardListing).shard) };
    const facts = await describe(name, shard);
    if (facts !== undefined) shards.push({ shard, ...facts });
  }
  return { shards };
}

async function sortedEntries(disk: Disk, dir: string, pattern: RegExp): Promise<string[]> {
  try {
    const names = await disk.io("read", dir, () => fs.readdir(dir));
    return names.filter((name) => pattern.test(name)).sort();
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

/** Shard names of a local disk from the cursor on, directory by directory, lazily. */
async function* localNames(disk: Disk, after: string | undefined): AsyncGenerator<string> {
  const afterObject = after?.slice(0, 32);
  for (const prefix of await sortedEntries(disk, disk.shardsDir, PREFIX_DIR_PATTERN)) {
    if (afterObject !== undefined && prefix < afterObject.slice(0, 2)) continue;
    for (const objectId of await sortedEntries(disk, path.join(disk.shardsDir, prefix), OBJECT_DIR_PATTERN)) {
      if (afterObject !== undefined && objectId < afterObject) continue;
      for (const file of await sortedEntries(disk, path.join(disk.shardsDir, prefix, objectId), /^[0-9a-f]{32}\.[0-9]+\.[0-9]+$/)) yield `${objectId}/${file}`;
    }
  }
}

export async function listLocalShards(disk: Disk, query: ShardListQuery): Promise<ShardListPage> {
  disk.requireUsable();
  const params = listParams(query);
  const names: string[] = [];
  // One more than a page, so the page knows whether another follows.
  for await (const name of localNames(disk, params.after)) {
    if (params.after !== undefined && name <= params.after) continue;
    names.push(name);
    if (names.length > params.limit) break;
  }
  return pageOf(names, params, async (name) => {
    const file = path.join(disk.shardsDir, name.slice(0, 2), name);
    try {
      const info = await disk.io("read", file, () => fs.stat(file));
      return { bytes: info.size, committedAt: Math.floor(info.mtimeMs) };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  });
}
