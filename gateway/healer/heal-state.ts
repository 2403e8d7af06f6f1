/**
 * The healer's durable state (scan checkpoints, when each kind of scan last completed, which
 * nodes were down and which were retired from the map). A gateway has no disk of its own, so
 * each document is a record in the reserved bucket HEAL_BUCKET on the k + m disks the map
 * places its name on, its JSON carried in the record's inline payload (records cap metadata
 * at 16 KiB; a checkpoint of a large cluster is bigger). A newer save has a higher revision
 * of one fixed version id, so the nodes keep only the newest. The name starts with a dot,
 * which no S3 bucket name may, so no client can read or forge it.
 */
import { CHECKSUM_ALGORITHM_DEFAULT } from "../../core/checksum.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import type { Cluster } from "../objects/cluster.js";
import { withTimeout } from "../objects/versions.js";
import { RECORD_READ_TIMEOUT_MS } from "./limits.js";

export const HEAL_BUCKET = ".tessera-heal";
/** Every state document is one version of its key; revisions order the saves. */
const STATE_VERSION_ID = "00000000000000000000000000000001";
/** Largest state document: a record's inline payload is capped at 1 MiB by the nodes. */
export const HEAL_STATE_BYTES_MAX = 512 * 1024;

export class HealStateStore {
  readonly #cluster: Cluster;
  #lastRevision = 0;

  constructor(cluster: Cluster) {
    this.#cluster = cluster;
  }

  #disks(name: string): ReturnType<Cluster["place"]>["locations"] {
    return this.#cluster.place(HEAL_BUCKET, name).locations;
  }

  /** The newest saved document, or undefined if none can be read. */
  async load<T>(name: string): Promise<T | undefined> {
    const reads = await Promise.allSettled(
      this.#disks(name).map((location) => withTimeout(this.#cluster.node(location.nodeId)?.getRecords(location.diskId, HEAL_BUCKET, name) ?? Promise.resolve([]), RECORD_READ_TIMEOUT_MS, "heal state")),
    );
    let newest: ObjectRecord | undefined;
    for (const read of reads) {
      if (read.status !== "fulfilled") continue;
      for (const record of read.value) if (newest === undefined || record.revision > newest.revision) newest = record;
    }
    if (newest?.inline === undefined) return undefined;
    this.#lastRevision = Math.max(this.#lastRevision, newest.revision);
    try {
      return JSON.parse(newest.inline.toString("utf8")) as T;
    } catch {
      return undefined;
    }
  }

  /** Saves on every disk that takes it; true if at least one did. */
  async save(name: string, value: unknown): Promise<boolean> {
    const payload = Buffer.from(JSON.stringify(value), "utf8");
    if (payload.length > HEAL_STATE_BYTES_MAX) return false;
    this.#lastRevision = Math.max(Date.now(), this.#lastRevision + 1);
    const disks = this.#disks(name);
    const { k, m, blockSize } = this.#cluster.map.ec;
    const record: ObjectRecord = {
      bucket: HEAL_BUCKET,
      key: name,
      versionId: STATE_VERSION_ID,
      revision: this.#lastRevision,
      objectId: this.#cluster.place(HEAL_BUCKET, name).objectIdHex,
      deleteMarker: false,
      size: 0,
      etag: "",
      lastModified: Date.now(),
      userMetadata: {},
      systemMetadata: {},
      ec: { k, m, blockBytes: blockSize, checksumAlgorithm: CHECKSUM_ALGORITHM_DEFAULT },
      placement: [],
      parts: [],
      inline: payload,
    };
    const results = await Promise.allSettled(disks.map((location) => withTimeout(this.#cluster.node(location.nodeId)?.putRecord(location.diskId, record) ?? Promise.reject(new Error("no node")), RECORD_READ_TIMEOUT_MS, "heal state save")));
    return results.some((result) => result.status === "fulfilled");
  }
}
