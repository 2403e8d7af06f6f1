/**
 * Draining the durable repair list (gateway/objects/repair-queue.ts): entries written by
 * degraded reads, checksum failures and short writes, as records in REPAIR_BUCKET on the
 * object's disks. Each entry becomes a work item; once the item is done, the entry versions
 * that were seen are deleted from every disk that listed them (a newer entry, written while
 * the repair ran, stays for the next poll).
 */
import type { Cluster } from "../objects/cluster.js";
import { REPAIR_BUCKET, needsVerify } from "../objects/repair-queue.js";
import { withTimeout } from "../objects/versions.js";
import type { DiskRef } from "./gather.js";
import { RECORD_READ_TIMEOUT_MS, REPAIR_LIST_ENTRIES_PER_POLL } from "./limits.js";

/** Entries listed per page from one disk (the node's own page ceiling). */
const REPAIR_LIST_PAGE = 1000;

export interface RepairListEntry {
  readonly bucket: string;
  readonly key: string;
  readonly reason: string;
  /** Some disk's entry asks for the shards to be read and verified (needsVerify). */
  readonly verify: boolean;
  /** The newest entry version each disk listed: only these and older ones are removed. */
  readonly seen: ReadonlyMap<string, { readonly disk: DiskRef; readonly versionId: string }>;
}

export interface ReadRepairListOptions {
  /** Entries ("bucket/key") not to take now (being repaired, or waiting to be tried again): they do not count towards the limit. */
  readonly skip?: (id: string) => boolean;
}

/** Up to REPAIR_LIST_ENTRIES_PER_POLL entries from every listable disk, merged by object. */
export async function readRepairList(cluster: Cluster, disks: readonly DiskRef[], options: ReadRepairListOptions = {}): Promise<RepairListEntry[]> {
  const entries = new Map<string, { bucket: string; key: string; reason: string; verify: boolean; seen: Map<string, { disk: DiskRef; versionId: string }> }>();
  for (const disk of disks) {
    const node = cluster.node(disk.nodeId);
    let startAfter: string | undefined;
    do {
      const listing = { bucket: REPAIR_BUCKET, limit: REPAIR_LIST_PAGE, ...(startAfter === undefined ? {} : { startAfter }) };
      const page = await withTimeout(node?.listRecords(disk.diskId, listing) ?? Promise.reject(new Error("no node")), RECORD_READ_TIMEOUT_MS, "repair list").catch(() => undefined);
      for (const record of page?.records ?? []) {
        const slash = record.key.indexOf("/");
        if (slash <= 0 || options.skip?.(record.key) === true) continue;
        const reason = record.userMetadata.reason ?? "";
        const entry = entries.get(record.key) ?? { bucket: record.key.slice(0, slash), key: record.key.slice(slash + 1), reason, verify: false, seen: new Map() };
        entry.verify ||= needsVerify(reason);
        entry.seen.set(`${disk.nodeId}/${disk.diskId}`, { disk, versionId: record.versionId });
        entries.set(record.key, entry);
      }
      startAfter = page?.nextStartAfter;
    } while (startAfter !== undefined && entries.size < REPAIR_LIST_ENTRIES_PER_POLL);
    if (entries.size >= REPAIR_LIST_ENTRIES_PER_POLL) break;
  }
  return [...entries.values()];
}

/** Removes the entry versions that were seen (and older ones) from the disks that listed them. */
export async function removeRepairEntry(cluster: Cluster, entry: RepairListEntry): Promise<void> {
  const entryKey = `${entry.bucket}/${entry.key}`;
  await Promise.allSettled(
    [...entry.seen.values()].map(async ({ disk, versionId }) => {
      const node = cluster.node(disk.nodeId);
      if (node === undefined) return;
      const versions = await node.getRecords(disk.diskId, REPAIR_BUCKET, entryKey);
      for (const record of versions) if (record.versionId <= versionId) await node.deleteRecord(disk.diskId, REPAIR_BUCKET, entryKey, record.versionId);
    }),
  );
}
