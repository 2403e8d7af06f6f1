/**
 * The gateway's Prometheus metrics (prom-client), in a registry of its own: the healer's
 * progress and the failure detector's view, read from the healer's status at each scrape,
 * plus the process's default metrics. Served at /_tessera/metrics (admin-api.ts).
 */
import { Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { Healer } from "./healer.js";

const NODE_STATES = ["ok", "suspect", "down"] as const;
const DISK_STATES = ["ok", "full", "failed", "unknown"] as const;

/** Totals exported as gauges of the running gateway (they restart at 0 with the process). */
const TOTALS: ReadonlyArray<[name: string, field: keyof ReturnType<Healer["status"]>["totals"], help: string]> = [
  ["tessera_heal_objects_scanned_total", "objectsScanned", "Objects whose records a scan checked."],
  ["tessera_heal_bytes_scanned_total", "bytesScanned", "Object bytes of the objects scans checked."],
  ["tessera_heal_objects_queued_total", "objectsQueued", "Objects queued for repair (scans, the repair list)."],
  ["tessera_heal_objects_repaired_total", "objectsRepaired", "Objects repaired to full redundancy."],
  ["tessera_heal_objects_degraded_total", "objectsDegraded", "Repairs that left an object short of full redundancy (retried)."],
  ["tessera_heal_objects_failed_total", "objectsFailed", "Repairs that failed with an error (retried)."],
  ["tessera_heal_shards_rebuilt_total", "shardsRebuilt", "Shards reconstructed from k others."],
  ["tessera_heal_shards_copied_total", "shardsCopied", "Healthy shards moved to their target disk."],
  ["tessera_heal_shards_reused_total", "shardsReused", "Shards of a returning disk verified and kept."],
  ["tessera_heal_corrupt_shards_total", "corruptFound", "Shards found corrupt or missing by a read or a scrub."],
  ["tessera_heal_garbage_records_total", "garbageRemoved", "Superseded, stale or failed-write records removed."],
  ["tessera_heal_objects_scrubbed_total", "objectsScrubbed", "Objects whose every shard was read and verified."],
  ["tessera_heal_bytes_read_total", "bytesRead", "Shard bytes the healer read."],
  ["tessera_heal_bytes_written_total", "bytesWritten", "Shard bytes the healer wrote."],
];

export class GatewayMetrics {
  readonly registry = new Registry();

  constructor(healer: Healer) {
    collectDefaultMetrics({ register: this.registry, prefix: "tessera_gateway_" });
    const registers = [this.registry];
    for (const [name, field, help] of TOTALS) {
      new Gauge({ name, help, registers, collect() { this.set(healer.status().totals[field]); } });
    }
    new Gauge({ name: "tessera_heal_objects_at_risk", help: "Objects counted by the last failure scan and not yet repaired, by spare shards left.", labelNames: ["spare"] as const, registers, collect() {
      this.reset();
      for (const [spare, count] of Object.entries(healer.status().atRisk)) this.set({ spare }, count);
    } });
    new Gauge({ name: "tessera_heal_queue_objects", help: "Objects waiting for repair or being repaired.", registers, collect() {
      const status = healer.status();
      this.set(status.queue.length + status.queue.inFlight);
    } });
    new Gauge({ name: "tessera_heal_rebuild_bytes_per_second", help: "Shard bytes written per second over the last 10 s.", registers, collect() { this.set(healer.status().rebuildBytesPerSecond); } });
    new Gauge({ name: "tessera_heal_bytes_left", help: "Estimated shard bytes still to write.", registers, collect() { this.set(healer.status().bytesLeft); } });
    new Gauge({ name: "tessera_heal_eta_seconds", help: "Estimated seconds to full redundancy at the current rate (absent when idle).", registers, collect() {
      this.reset();
      const eta = healer.status().etaSeconds;
      if (eta !== undefined) this.set(eta);
    } });
    this.#detectorGauges(healer);
  }

  #detectorGauges(healer: Healer): void {
    const registers = [this.registry];
    new Gauge({ name: "tessera_node_up_state", help: "1 for the node's state as the healer sees it (ok, suspect, down), 0 for the others.", labelNames: ["node", "state"] as const, registers, collect() {
      this.reset();
      for (const node of healer.detector.status()) for (const state of NODE_STATES) this.set({ node: node.nodeId, state }, node.state === state ? 1 : 0);
    } });
    new Gauge({ name: "tessera_disk_health_state", help: "1 for the disk's state as last reported (ok, full, failed, unknown), 0 for the others.", labelNames: ["node", "disk", "state"] as const, registers, collect() {
      this.reset();
      for (const node of healer.detector.status()) for (const disk of node.disks) for (const state of DISK_STATES) this.set({ node: node.nodeId, disk: disk.diskId, state }, disk.state === state ? 1 : 0);
    } });
    new Gauge({ name: "tessera_disks_out", help: "Disks out of the placement the healer targets (down nodes, failed disks).", registers, collect() { this.set(healer.detector.outDisks().size); } });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }
}
