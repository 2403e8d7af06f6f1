/**
 * The ceiling that bounds each Tessera figure, derived from the measured ceilings with the
 * work a request does in a k+m cluster on this many cores (everything shares them: client,
 * gateway, nodes). Each bound names what binds it. The model is deliberately simple and is
 * printed with the results, so a reader can check it:
 *
 * - PUT of a large object, per GB: one hop client→gateway, (k+m)/k hops gateway→nodes, one MD5,
 *   one RS encode, and (k+m)/k GB written to disk (the write's copy into the page cache and
 *   the fsync's writeback run on the same cores: perf showed them at 44% of a node's CPU
 *   during 64 MiB PUTs): cores / CPU seconds = MB/s. The disks take (k+m)/k bytes per byte,
 *   synced once per shard file: sustained disk MB/s × k/(k+m). The lower of the two binds.
 * - GET of a large object: one hop nodes→gateway (only the k data shards) and one hop
 *   gateway→client; reads come from the page cache on this machine, so CPU binds. Degraded
 *   reads add a reconstruct, under 5% of the hop cost: same bound.
 * - MIXED: half of each, by CPU seconds per GB.
 * - 4 KiB objects are inline in their records: a PUT is one client request and k+m record
 *   writes, a GET one client request and k record reads (a read quorum: versions.ts); each
 *   costs a small round trip. Under concurrency the gateway batches record operations per
 *   node (core/record-batch.ts), so a run can beat this bound: it counts unbatched work.
 */
import { availableParallelism } from "node:os";
import { EC_K_DEFAULT, EC_M_DEFAULT } from "../core/limits.js";
import { INLINE_OBJECT_BYTES_MAX } from "../gateway/objects/small-objects.js";
import type { Ceilings } from "./ceilings.js";
import { MB } from "./limits.js";
import type { Operation } from "./workload.js";

export interface Bound {
  /** MB/s the figure cannot exceed on this machine. */
  readonly megabytesPerSecond: number;
  /** What binds: "CPU" or "disk". */
  readonly by: "CPU" | "disk";
}

export interface ModelInputs {
  readonly ceilings: Ceilings;
  readonly cores: number;
  readonly k: number;
  readonly m: number;
}

export function modelInputs(ceilings: Ceilings): ModelInputs {
  return { ceilings, cores: availableParallelism(), k: EC_K_DEFAULT, m: EC_M_DEFAULT };
}

/** CPU seconds per GB of a large PUT and GET. */
function cpuPerGB(inputs: ModelInputs): { put: number; get: number } {
  const { ceilings, k, m } = inputs;
  const hop = ceilings.loopbackCpuSecondsPerGB.median;
  const put = hop * (1 + (k + m) / k) + 1000 / ceilings.md5MBps.median + 1000 / ceilings.encodeMBps.median + ((k + m) / k) * ceilings.diskWriteCpuSecondsPerGB.median;
  return { put, get: hop * 2 };
}

/** Round trips of a small (inline) object's operation: the client's and the records'. */
function smallRoundTrips(inputs: ModelInputs, operation: Operation): number {
  const put = 1 + inputs.k + inputs.m;
  const get = 1 + inputs.k;
  return operation === "PUT" ? put : operation === "GET" ? get : (put + get) / 2;
}

export function bound(inputs: ModelInputs, operation: Operation, size: number): Bound {
  const { ceilings, cores, k, m } = inputs;
  if (size <= INLINE_OBJECT_BYTES_MAX) {
    const perOperation = smallRoundTrips(inputs, operation) * ceilings.smallRequestCpuSeconds.median;
    return { megabytesPerSecond: (cores / perOperation) * (size / MB), by: "CPU" };
  }
  const cpu = cpuPerGB(inputs);
  const disk = ceilings.diskWriteMBps.median * (k / (k + m));
  const perGB = operation === "PUT" ? cpu.put : operation === "GET" ? cpu.get : (cpu.put + cpu.get) / 2;
  const byCpu = (cores / perGB) * 1000;
  if (operation === "GET") return { megabytesPerSecond: byCpu, by: "CPU" };
  // MIXED writes half its bytes: the disk bound doubles.
  const byDisk = operation === "PUT" ? disk : disk * 2;
  return byDisk < byCpu ? { megabytesPerSecond: byDisk, by: "disk" } : { megabytesPerSecond: byCpu, by: "CPU" };
}

export function describeModel(inputs: ModelInputs): string[] {
  const cpu = cpuPerGB(inputs);
  const { k, m, cores, ceilings } = inputs;
  return [
    `cores: ${cores}; code ${k}+${m}`,
    `large PUT: ${cpu.put.toFixed(2)} CPU s/GB (1 + ${(k + m) / k} hops at ${ceilings.loopbackCpuSecondsPerGB.median.toFixed(2)}, MD5, encode, ${(k + m) / k} GB to disk at ${ceilings.diskWriteCpuSecondsPerGB.median.toFixed(2)}) → ${((cores / cpu.put) * 1000).toFixed(0)} MB/s; disk ${ceilings.diskWriteMBps.median.toFixed(0)} MB/s × ${k}/${k + m} → ${(ceilings.diskWriteMBps.median * (k / (k + m))).toFixed(0)} MB/s`,
    `large GET: ${cpu.get.toFixed(2)} CPU s/GB (2 hops) → ${((cores / cpu.get) * 1000).toFixed(0)} MB/s`,
    ...(["PUT", "GET"] as const).map((operation) => {
      const trips = smallRoundTrips(inputs, operation);
      return `4 KiB ${operation}: ${trips} round trips of ${(ceilings.smallRequestCpuSeconds.median * 1e6).toFixed(0)} CPU µs (unbatched) → ${(cores / (trips * ceilings.smallRequestCpuSeconds.median)).toFixed(0)} ops/s`;
    }),
  ];
}
