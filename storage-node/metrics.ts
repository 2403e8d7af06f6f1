/**
 * The node's Prometheus metrics (prom-client), in a registry of its own so two servers in one
 * process never share counters. Disk gauges are refreshed from `health()` at each scrape.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { DiskState, StorageNode } from "../core/storage-api.js";

/**
 * Request latency buckets in seconds: from a cached record read (~1 ms) to a large shard
 * streamed and fsynced (tens of seconds). Each bucket is one time series per route and method.
 */
const REQUEST_SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 120];
const DISK_STATES: readonly DiskState[] = ["ok", "failed", "full"];

export class NodeMetrics {
  readonly registry = new Registry();
  readonly #node: StorageNode;
  readonly requests = new Counter({
    name: "tessera_node_requests_total",
    help: "Internal API requests answered, by route pattern, method and status.",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: "tessera_node_request_duration_seconds",
    help: "Time to answer an internal API request (for streamed shards: the whole stream).",
    labelNames: ["route", "method"] as const,
    buckets: REQUEST_SECONDS_BUCKETS,
    registers: [this.registry],
  });
  readonly shardBytesReceived = new Counter({ name: "tessera_node_shard_bytes_received_total", help: "Shard bytes received in PUT bodies.", registers: [this.registry] });
  readonly shardBytesSent = new Counter({ name: "tessera_node_shard_bytes_sent_total", help: "Shard bytes sent in GET bodies.", registers: [this.registry] });
  readonly shardStreamsBroken = new Counter({
    name: "tessera_node_shard_streams_broken_total",
    help: "Shard streams that broke midway: in = the client went away, out = a corrupt chunk or read error cut the response.",
    labelNames: ["direction"] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({ name: "tessera_node_auth_failures_total", help: "Requests refused for a missing, bad, stale or replayed signature.", registers: [this.registry] });
  readonly #diskState = new Gauge({ name: "tessera_disk_state", help: "1 for the disk's current state (ok, failed, full), 0 for the others.", labelNames: ["disk", "state"] as const, registers: [this.registry] });
  readonly #diskFree = new Gauge({ name: "tessera_disk_free_bytes", help: "Bytes free on the disk (or left of its configured capacity).", labelNames: ["disk"] as const, registers: [this.registry] });
  readonly #diskUsed = new Gauge({ name: "tessera_disk_used_bytes", help: "Bytes used by Tessera on the disk.", labelNames: ["disk"] as const, registers: [this.registry] });
  readonly #diskShards = new Gauge({ name: "tessera_disk_shards", help: "Shard files on the disk.", labelNames: ["disk"] as const, registers: [this.registry] });
  readonly #diskRecords = new Gauge({ name: "tessera_disk_records", help: "Object-version records on the disk.", labelNames: ["disk"] as const, registers: [this.registry] });

  constructor(node: StorageNode) {
    this.#node = node;
    collectDefaultMetrics({ register: this.registry, prefix: "tessera_node_" });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, with disk gauges read fresh from the node. */
  async render(): Promise<string> {
    const health = await this.#node.health();
    for (const disk of health.disks) {
      for (const state of DISK_STATES) this.#diskState.set({ disk: disk.diskId, state }, disk.state === state ? 1 : 0);
      this.#diskFree.set({ disk: disk.diskId }, disk.freeBytes);
      this.#diskUsed.set({ disk: disk.diskId }, disk.usedBytes);
      this.#diskShards.set({ disk: disk.diskId }, disk.shardCount);
      this.#diskRecords.set({ disk: disk.diskId }, disk.recordCount);
    }
    return this.registry.metrics();
  }
}
