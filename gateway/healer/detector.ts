/**
 * Failure detection (DESIGN.md, "Healing"): every node's health() is probed each interval.
 * A node with no good probe for `suspectAfterMs` is `suspect` (nothing is rebuilt, reads
 * already route around it), and after `downAfterMs` it is `down`: its disks are out of the
 * placement the healer targets. Disks fail individually: a node that answers reports each
 * disk's own state, and a `failed` disk is out at once (its data is gone or unreadable).
 * Each change is timestamped, so status shows when a failure was detected.
 */
import { assert } from "../../core/assert.js";
import type { DiskHealth, DiskState, NodeHealth } from "../../core/storage-api.js";
import type { Cluster } from "../objects/cluster.js";
import { withTimeout } from "../objects/versions.js";

export type NodeState = "ok" | "suspect" | "down";
/** A disk's state as last reported, or `unknown` while its node does not answer. */
export type DiskStatusState = DiskState | "unknown";

export interface DiskStatus {
  readonly diskId: string;
  readonly state: DiskStatusState;
  readonly reason?: string;
  readonly freeBytes: number;
  readonly usedBytes: number;
  readonly shardCount: number;
  readonly recordCount: number;
  /** When the disk entered its current state (ms since the epoch). */
  readonly since: number;
}

export interface NodeStatus {
  readonly nodeId: string;
  readonly state: NodeState;
  /** When the node entered its current state. */
  readonly since: number;
  readonly lastOkAt?: number;
  /** When the current failure was first seen (the first missed probe after a good one). */
  readonly failingSince?: number;
  /** When the current failure was detected: the node became suspect (or down at once). */
  readonly detectedAt?: number;
  readonly lastError?: string;
  /** Round trip of the last good probe. */
  readonly probeMs?: number;
  readonly disks: readonly DiskStatus[];
}

export interface DetectorEvent {
  readonly at: number;
  readonly nodeId: string;
  readonly diskId?: string;
  readonly from: string;
  readonly to: string;
  readonly reason?: string;
}

export interface DetectorOptions {
  readonly cluster: Cluster;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly suspectAfterMs: number;
  readonly downAfterMs: number;
  readonly now?: () => number;
  /** Called after a probe round that changed any node or disk state. */
  readonly onChange?: (events: readonly DetectorEvent[]) => void;
}

/** State transitions kept for status output. */
const EVENTS_KEPT_MAX = 200;

interface NodeTrack {
  state: NodeState;
  since: number;
  lastOkAt: number | undefined;
  failingSince: number | undefined;
  detectedAt: number | undefined;
  lastError: string | undefined;
  probeMs: number | undefined;
  disks: Map<string, DiskStatus>;
}

export class FailureDetector {
  readonly #options: DetectorOptions;
  readonly #now: () => number;
  readonly #nodes = new Map<string, NodeTrack>();
  readonly #events: DetectorEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #probing: Promise<void> | undefined;
  readonly #startedAt: number;

  constructor(options: DetectorOptions) {
    assert(options.probeTimeoutMs <= options.probeIntervalMs && options.suspectAfterMs <= options.downAfterMs, "settings were validated");
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
  }

  /**
   * Nodes that were down before a restart (persisted by the healer) are down again at their
   * first missed probe, instead of after a fresh `downAfterMs`.
   */
  restoreDown(down: ReadonlyMap<string, number>): void {
    for (const [nodeId, since] of down) {
      const track = this.#track(nodeId);
      if (track.lastOkAt === undefined) Object.assign(track, { state: "down", since, failingSince: since, detectedAt: since });
    }
  }

  start(): void {
    if (this.#timer !== undefined) return;
    void this.probeAll();
    this.#timer = setInterval(() => void this.probeAll(), this.#options.probeIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#probing;
  }

  /** One probe of every node the cluster knows (the map's and retired ones still named by records). */
  async probeAll(): Promise<void> {
    if (this.#probing !== undefined) return this.#probing;
    this.#probing = this.#round().finally(() => (this.#probing = undefined));
    return this.#probing;
  }

  async #round(): Promise<void> {
    const ids = this.#options.cluster.knownNodeIds();
    const results = await Promise.all(ids.map((nodeId) => this.#probe(nodeId)));
    const events = results.flat();
    for (const nodeId of [...this.#nodes.keys()]) if (!ids.includes(nodeId)) this.#nodes.delete(nodeId);
    if (events.length === 0) return;
    this.#events.push(...events);
    this.#events.splice(0, Math.max(0, this.#events.length - EVENTS_KEPT_MAX));
    this.#options.onChange?.(events);
  }

  async #probe(nodeId: string): Promise<DetectorEvent[]> {
    const node = this.#options.cluster.node(nodeId);
    const started = this.#now();
    try {
      if (node === undefined) throw new Error(`no client for node ${nodeId}`);
      const health = await withTimeout(node.health(), this.#options.probeTimeoutMs, `health of ${nodeId}`);
      return this.#answered(nodeId, health, this.#now() - started);
    } catch (error) {
      return this.#missed(nodeId, error instanceof Error ? error.message : String(error));
    }
  }

  #track(nodeId: string): NodeTrack {
    let track = this.#nodes.get(nodeId);
    if (track === undefined) {
      track = { state: "ok", since: this.#now(), lastOkAt: undefined, failingSince: undefined, detectedAt: undefined, lastError: undefined, probeMs: undefined, disks: new Map() };
      this.#nodes.set(nodeId, track);
    }
    return track;
  }

  #answered(nodeId: string, health: NodeHealth, probeMs: number): DetectorEvent[] {
    const track = this.#track(nodeId);
    const now = this.#now();
    const events: DetectorEvent[] = [];
    if (track.state !== "ok") {
      events.push({ at: now, nodeId, from: track.state, to: "ok" });
      track.since = now;
    }
    Object.assign(track, { state: "ok", lastOkAt: now, failingSince: undefined, detectedAt: undefined, lastError: undefined, probeMs });
    const reported = new Map(health.disks.map((disk) => [disk.diskId, disk]));
    for (const diskId of this.#expectedDisks(nodeId, reported)) {
      const disk = reported.get(diskId) ?? missingDisk(diskId);
      const before = track.disks.get(diskId);
      if (before === undefined || before.state !== disk.state) {
        if (before !== undefined) events.push({ at: now, nodeId, diskId, from: before.state, to: disk.state, ...(disk.reason === undefined ? {} : { reason: disk.reason }) });
        track.disks.set(diskId, statusOf(disk, now));
      } else {
        track.disks.set(diskId, statusOf(disk, before.since));
      }
    }
    return events;
  }

  /** The disks the map lists for the node, plus any it reports (a retired node's). */
  #expectedDisks(nodeId: string, reported: ReadonlyMap<string, DiskHealth>): string[] {
    const inMap = this.#options.cluster.map.nodes.find((node) => node.id === nodeId)?.disks.map((disk) => disk.id) ?? [];
    return [...new Set([...inMap, ...reported.keys()])];
  }

  #missed(nodeId: string, error: string): DetectorEvent[] {
    const track = this.#track(nodeId);
    const now = this.#now();
    track.lastError = error;
    track.failingSince ??= now;
    const silentFor = now - (track.lastOkAt ?? Math.min(this.#startedAt, track.failingSince));
    const next: NodeState = track.state === "down" || silentFor >= this.#options.downAfterMs ? "down" : silentFor >= this.#options.suspectAfterMs ? "suspect" : track.state;
    if (next === track.state) return [];
    const event: DetectorEvent = { at: now, nodeId, from: track.state, to: next, reason: error };
    if (track.state === "ok") track.detectedAt = now;
    track.state = next;
    track.since = now;
    for (const [diskId, disk] of track.disks) track.disks.set(diskId, { ...disk, state: "unknown", since: disk.state === "unknown" ? disk.since : now });
    return [event];
  }

  nodeState(nodeId: string): NodeState | undefined {
    return this.#nodes.get(nodeId)?.state;
  }

  /** A shard on this disk can be read and written now: its node answers and the disk is not failed. */
  readable(nodeId: string, diskId: string): boolean {
    const track = this.#nodes.get(nodeId);
    if (track === undefined || track.state !== "ok" || track.lastOkAt === undefined) return false;
    const disk = track.disks.get(diskId);
    return disk !== undefined && (disk.state === "ok" || disk.state === "full");
  }

  /**
   * The read path's view (ObjectStore.useHealth): true while the disk's node is suspect or
   * down, or the disk failed. Unlike `readable`, a node not yet probed is not held unusable.
   */
  unusable(nodeId: string, diskId: string): boolean {
    const track = this.#nodes.get(nodeId);
    if (track === undefined) return false;
    return track.state !== "ok" || track.disks.get(diskId)?.state === "failed";
  }

  /** Disks whose shards must be rebuilt elsewhere: every disk of a down node, and failed disks. */
  outDisks(): Set<string> {
    const out = new Set<string>();
    for (const node of this.#options.cluster.map.nodes) {
      const track = this.#nodes.get(node.id);
      for (const disk of node.disks) {
        if (track?.state === "down" || track?.disks.get(disk.id)?.state === "failed") out.add(`${node.id}/${disk.id}`);
      }
    }
    return out;
  }

  /** Down nodes and since when, for the healer to persist. */
  downNodes(): Map<string, number> {
    return new Map([...this.#nodes].filter(([, track]) => track.state === "down").map(([id, track]) => [id, track.since]));
  }

  /** True once every known node has been probed at least once (answered or not). */
  get settled(): boolean {
    return this.#options.cluster.knownNodeIds().every((id) => this.#nodes.has(id));
  }

  status(): NodeStatus[] {
    return this.#options.cluster.knownNodeIds().map((nodeId) => {
      const track = this.#nodes.get(nodeId);
      if (track === undefined) return { nodeId, state: "ok", since: this.#startedAt, disks: [] };
      return {
        nodeId,
        state: track.state,
        since: track.since,
        ...(track.lastOkAt === undefined ? {} : { lastOkAt: track.lastOkAt }),
        ...(track.failingSince === undefined ? {} : { failingSince: track.failingSince }),
        ...(track.detectedAt === undefined ? {} : { detectedAt: track.detectedAt }),
        ...(track.lastError === undefined ? {} : { lastError: track.lastError }),
        ...(track.probeMs === undefined ? {} : { probeMs: track.probeMs }),
        disks: [...track.disks.values()],
      };
    });
  }

  events(): readonly DetectorEvent[] {
    return [...this.#events];
  }
}

function missingDisk(diskId: string): DiskHealth {
  return { diskId, state: "failed", reason: "the node does not report this disk of the map", freeBytes: 0, usedBytes: 0, shardCount: 0, recordCount: 0 };
}

function statusOf(disk: DiskHealth, since: number): DiskStatus {
  return {
    diskId: disk.diskId,
    state: disk.state,
    ...(disk.reason === undefined ? {} : { reason: disk.reason }),
    freeBytes: disk.freeBytes,
    usedBytes: disk.usedBytes,
    shardCount: disk.shardCount,
    recordCount: disk.recordCount,
    since,
  };
}
