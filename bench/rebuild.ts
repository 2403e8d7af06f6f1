/**
 * REBUILD HOOK — rebuild throughput (MB/s of shards restored after a node is lost), the
 * issue's fourth figure, waits for the healer (gateway/healer/, being built now). When it
 * lands, fill in `measureRebuild`:
 *   1. PUT REBUILD_OBJECTS objects of REBUILD_OBJECT_BYTES (they are the data to restore);
 *   2. stop one node and wipe its disk (cluster.node(id).dirs), start it again empty;
 *   3. trigger or wait for the healer's scan (its progress report gives bytes done and left);
 *   4. time until every lost shard is back: MB/s = shard bytes restored / seconds, with the
 *      CPU seconds per GB of gateway and nodes, and the ceiling it is judged against
 *      (k shard reads + one shard write per restored shard: the PUT model of bench/model.ts).
 * Until then the report says "pending" and why, instead of a number.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { TesseraTarget } from "./targets.js";

/** What a rebuild run will restore: 8 GiB of objects would take minutes; 1 GiB tells the rate. */
export const REBUILD_OBJECTS = 16;
export const REBUILD_OBJECT_BYTES = 64 * 1024 * 1024;

export interface RebuildResult {
  readonly status: "measured" | "pending";
  readonly note: string;
  readonly megabytesPerSecond?: number;
}

const HEALER_DIRECTORY = fileURLToPath(new URL("../gateway/healer/", import.meta.url));

export async function measureRebuild(_tessera: TesseraTarget): Promise<RebuildResult> {
  if (!existsSync(HEALER_DIRECTORY)) return { status: "pending", note: "no healer yet (gateway/healer/ does not exist): rebuild throughput is measured once it lands" };
  // TODO(healer): the healer's directory exists; wire its trigger and progress API in here.
  return { status: "pending", note: "gateway/healer/ exists but bench/rebuild.ts does not drive it yet" };
}
