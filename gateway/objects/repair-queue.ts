/**
 * The durable list of objects that need repair (a write that missed shards, a degraded
 * read, a checksum failure). A gateway keeps no disk of its own, so each entry is a version
 * record in a reserved bucket, REPAIR_BUCKET, on the disks of the object itself: it
 * survives gateway restarts, a lost disk takes only its own entries, and the healer finds
 * them with the ordinary listing call. The name starts with a dot, which no S3 bucket name
 * may, so no client can read or forge it.
 */
import { CHECKSUM_ALGORITHM_DEFAULT } from "../../core/checksum.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import { HybridClock } from "../hlc.js";
import type { Cluster } from "./cluster.js";
import type { RepairQueue } from "./object-store.js";

export const REPAIR_BUCKET = ".tessera-repair";
/**
 * A key reported again within this window is not written again: a hot object read while a
 * node is down would otherwise write an entry per GET.
 */
export const REPAIR_DEDUP_WINDOW_MS = 60_000;
/** Keys remembered for de-duplication; beyond it the oldest are forgotten (costs a rewrite). */
const REPAIR_DEDUP_KEYS_MAX = 10_000;

/**
 * True when an entry's reason says a shard's bytes may be bad (a checksum failure, a read that
 * broke off): the healer then reads and verifies the object's shards before planning. A shard
 * that was only unreachable (its node down or silent) needs no such reading.
 */
export function needsVerify(reason: string): boolean {
  return /failed a read|checksum|corrupt/i.test(reason);
}

export interface RepairEntry {
  readonly bucket: string;
  readonly key: string;
  readonly reason: string;
  readonly queuedAt: number;
}

export class NodeRepairQueue implements RepairQueue {
  readonly #cluster: Cluster;
  readonly #clock: HybridClock;
  readonly #recent = new Map<string, number>();
  readonly #pending = new Set<Promise<void>>();
  readonly #onError: (error: unknown) => void;

  constructor(cluster: Cluster, options: { clock?: HybridClock; onError?: (error: unknown) => void } = {}) {
    this.#cluster = cluster;
    this.#clock = options.clock ?? new HybridClock();
    this.#onError = options.onError ?? (() => {});
  }

  enqueue(bucket: string, key: string, reason: string): void {
    const id = `${bucket}/${key}`;
    const verify = needsVerify(reason);
    const now = Date.now();
    // The healer reads an entry's newest version only. One that asks for verification covers
    // one that does not, but not the other way round: a plain entry written after one that
    // asks would hide it, and one that asks is written even after a plain one.
    const recent = (name: string): boolean => now - (this.#recent.get(name) ?? -Infinity) < REPAIR_DEDUP_WINDOW_MS;
    if (recent(`${id}#verify`) || (!verify && recent(id))) return;
    const name = verify ? `${id}#verify` : id;
    this.#recent.delete(name);
    this.#recent.set(name, now);
    if (this.#recent.size > REPAIR_DEDUP_KEYS_MAX) this.#recent.delete(this.#recent.keys().next().value as string);
    const work = this.#write({ bucket, key, reason, queuedAt: now }).catch((error: unknown) => this.#onError(error));
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }

  /** Waits for entries being written (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  async #write(entry: RepairEntry): Promise<void> {
    const placement = this.#cluster.place(entry.bucket, entry.key);
    const { k, m, blockSize } = this.#cluster.map.ec;
    const record: ObjectRecord = {
      bucket: REPAIR_BUCKET,
      key: `${entry.bucket}/${entry.key}`,
      versionId: this.#clock.nextVersionId(),
      revision: 1,
      objectId: placement.objectIdHex,
      deleteMarker: false,
      size: 0,
      etag: "",
      lastModified: entry.queuedAt,
      userMetadata: { reason: entry.reason },
      systemMetadata: {},
      ec: { k, m, blockBytes: blockSize, checksumAlgorithm: CHECKSUM_ALGORITHM_DEFAULT },
      placement: placement.locations,
      parts: [],
    };
    // Best effort on every disk of the object: one stored copy is enough for the healer.
    const results = await Promise.allSettled(placement.locations.map((location) => this.#cluster.node(location.nodeId)?.putRecord(location.diskId, record)));
    if (results.every((result) => result.status === "rejected")) throw new Error(`repair entry for ${record.key}: no disk took it`);
  }

  /** Every queued entry on every reachable disk, de-duplicated (the healer's view). */
  async list(): Promise<RepairEntry[]> {
    const entries = new Map<string, RepairEntry>();
    for (const location of this.#cluster.allDisks()) {
      const node = this.#cluster.node(location.nodeId);
      let startAfter: string | undefined;
      for (;;) {
        const page = await node?.listRecords(location.diskId, { bucket: REPAIR_BUCKET, limit: 1000, ...(startAfter === undefined ? {} : { startAfter }) }).catch(() => undefined);
        for (const record of page?.records ?? []) {
          const slash = record.key.indexOf("/");
          entries.set(record.key, { bucket: record.key.slice(0, slash), key: record.key.slice(slash + 1), reason: record.userMetadata.reason ?? "", queuedAt: record.lastModified });
        }
        startAfter = page?.nextStartAfter;
        if (startAfter === undefined) break;
      }
    }
    return [...entries.values()];
  }
}
