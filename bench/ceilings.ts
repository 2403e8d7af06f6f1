/**
 * The ceilings every Tessera figure is judged against, measured in the same run on the same
 * machine: Reed-Solomon 4+2 encode and MD5 on one core, one loopback HTTP hop (undici to a
 * node:http sink in another process, both directions, with its CPU cost per GB), small
 * request round trips per second, and sequential disk writes with one fsync at the end and
 * with an fsync per MiB (in the directory the cluster's disks live in, with O_DIRECT where
 * that directory takes it, as the storage nodes write shard files).
 */
import { createHash } from "node:crypto";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Pool } from "undici";
import { ErasureCodec } from "../core/codec.js";
import { BLOCK_BYTES_DEFAULT, EC_K_DEFAULT, EC_M_DEFAULT } from "../core/limits.js";
import { startHelper } from "./child.js";
import type { DataPool } from "./data.js";
import { GB, KiB, MB, MiB, type Budget } from "./limits.js";
import { cpuSeconds, ownCpuSeconds } from "./proc.js";
import { spread, type Spread } from "./stats.js";
import { DIRECT_WRITE_FLAGS, alignedBuffer, probeDirectIo } from "../storage-node/direct-io.js";

/** Bytes per loopback request: one 64 MiB object, as the matrix's largest PUTs send (in BODY_PIECE_BYTES pieces, as they do). */
const LOOPBACK_REQUEST_BYTES = 64 * MiB;
/** Small round trips: 4 KiB bodies, 16 in flight, for this long per run. */
const SMALL_REQUEST_BYTES = 4 * KiB;
const SMALL_REQUEST_CONCURRENCY = 16;
/** Disk writes per syscall: the stripe size, what a node writes per batch at most. */
const DISK_WRITE_BYTES = 1 * MiB;

export interface Ceilings {
  /** RS 4+2 encode of 1 MiB stripes, data MB/s, one thread. */
  readonly encodeMBps: Spread;
  /** MD5 of 1 MiB pieces, MB/s, one core. */
  readonly md5MBps: Spread;
  /** One loopback HTTP hop, client to server (PUT) and server to client (GET), MB/s on one connection. */
  readonly loopbackPutMBps: Spread;
  readonly loopbackGetMBps: Spread;
  /** CPU seconds per GB of one hop, both ends together. */
  readonly loopbackCpuSecondsPerGB: Spread;
  /** Requests with a 4 KiB body answered per second, 16 in flight. */
  readonly smallRequestsPerSecond: Spread;
  /** CPU seconds one such request costs, both ends together. */
  readonly smallRequestCpuSeconds: Spread;
  /** Sequential writes of 1 MiB with one fsync at the end, and with an fsync after every MiB. */
  readonly diskWriteMBps: Spread;
  readonly diskWriteFsyncPerMiBMBps: Spread;
  /**
   * CPU seconds per GB of those writes with one fsync at the end (the write syscalls' copy
   * into the page cache and the fsync's writeback, counted on this process's threads). Shard
   * writes cost the nodes the same on the cores everything shares.
   */
  readonly diskWriteCpuSecondsPerGB: Spread;
  /** Whether those writes used O_DIRECT (the directory took it), as the nodes' shard writes do. */
  readonly diskWriteDirect: boolean;
}

async function timed(durationMs: number, step: () => Promise<number> | number): Promise<number> {
  let bytes = 0;
  const started = performance.now();
  while (performance.now() - started < durationMs) bytes += await step();
  return bytes / MB / ((performance.now() - started) / 1000);
}

async function encodeMBps(data: DataPool, durationMs: number): Promise<number> {
  const codec = new ErasureCodec({ k: EC_K_DEFAULT, m: EC_M_DEFAULT });
  const stripe = Buffer.from(data.whole(0, BLOCK_BYTES_DEFAULT));
  const parity = Buffer.alloc((BLOCK_BYTES_DEFAULT / EC_K_DEFAULT) * EC_M_DEFAULT);
  return timed(durationMs, async () => {
    await codec.encodeStripe(stripe, parity);
    return stripe.length;
  });
}

async function md5MBps(data: DataPool, durationMs: number): Promise<number> {
  const piece = data.whole(0, MiB);
  const hash = createHash("md5");
  const speed = await timed(durationMs, () => {
    hash.update(piece);
    return piece.length;
  });
  hash.digest();
  return speed;
}

interface DiskRun {
  readonly megabytesPerSecond: number;
  readonly cpuSecondsPerGB: number;
}

async function diskRun(directory: string, bytes: number, fsyncEach: boolean, direct: boolean, data: DataPool): Promise<DiskRun> {
  const file = join(directory, `disk-ceiling-${fsyncEach ? "fsync" : "plain"}`);
  const piece = data.whole(1, DISK_WRITE_BYTES);
  // O_DIRECT wants aligned memory: the same bytes, copied once into an aligned buffer.
  const source = direct ? alignedBuffer(DISK_WRITE_BYTES) : piece;
  if (direct) source.set(piece);
  await rm(file, { force: true });
  const handle = await open(file, direct ? DIRECT_WRITE_FLAGS : "w", 0o644);
  try {
    const cpuBefore = ownCpuSeconds();
    const started = performance.now();
    for (let written = 0; written < bytes; written += piece.length) {
      await handle.write(source, 0, source.length, null);
      if (fsyncEach) await handle.sync();
    }
    await handle.sync();
    const seconds = (performance.now() - started) / 1000;
    return { megabytesPerSecond: bytes / MB / seconds, cpuSecondsPerGB: (ownCpuSeconds() - cpuBefore) / (bytes / GB) };
  } finally {
    await handle.close();
    await rm(file, { force: true });
  }
}

interface LoopbackRun {
  readonly putMBps: number;
  readonly getMBps: number;
  readonly cpuSecondsPerGB: number;
}

async function loopbackRun(pool: Pool, sinkPid: number, totalBytes: number, data: DataPool): Promise<LoopbackRun> {
  const requests = Math.max(1, Math.round(totalBytes / LOOPBACK_REQUEST_BYTES));
  const cpuBefore = ownCpuSeconds() + cpuSeconds(sinkPid);
  let started = performance.now();
  for (let index = 0; index < requests; index++) {
    const body = Readable.from(data.pieces(index, LOOPBACK_REQUEST_BYTES), { objectMode: false });
    const response = await pool.request({ method: "PUT", path: "/", headers: { "content-length": String(LOOPBACK_REQUEST_BYTES) }, body });
    await response.body.dump();
  }
  const putMBps = (requests * LOOPBACK_REQUEST_BYTES) / MB / ((performance.now() - started) / 1000);
  started = performance.now();
  for (let index = 0; index < requests; index++) {
    const response = await pool.request({ method: "GET", path: `/?bytes=${LOOPBACK_REQUEST_BYTES}` });
    for await (const piece of response.body) void piece;
  }
  const getMBps = (requests * LOOPBACK_REQUEST_BYTES) / MB / ((performance.now() - started) / 1000);
  const cpu = ownCpuSeconds() + cpuSeconds(sinkPid) - cpuBefore;
  return { putMBps, getMBps, cpuSecondsPerGB: cpu / ((2 * requests * LOOPBACK_REQUEST_BYTES) / GB) };
}

async function smallRequests(pool: Pool, sinkPid: number, durationMs: number, data: DataPool): Promise<{ perSecond: number; cpuSeconds: number }> {
  const body = data.whole(2, SMALL_REQUEST_BYTES);
  const cpuBefore = ownCpuSeconds() + cpuSeconds(sinkPid);
  let requests = 0;
  const deadline = performance.now() + durationMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SMALL_REQUEST_CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        const response = await pool.request({ method: "PUT", path: "/", headers: { "content-length": String(SMALL_REQUEST_BYTES) }, body });
        await response.body.dump();
        requests++;
      }
    }),
  );
  const cpu = ownCpuSeconds() + cpuSeconds(sinkPid) - cpuBefore;
  return { perSecond: requests / ((performance.now() - started) / 1000), cpuSeconds: cpu / requests };
}

/** Measures every ceiling `budget.runs` times; `directory` is on the disk the cluster uses. */
export async function measureCeilings(budget: Budget, data: DataPool, directory: string): Promise<Ceilings> {
  const runs = Array.from({ length: budget.runs }, (_, index) => index);
  const encode: number[] = [];
  const md5: number[] = [];
  for (const _ of runs) encode.push(await encodeMBps(data, budget.cpuCeilingMs));
  for (const _ of runs) md5.push(await md5MBps(data, budget.cpuCeilingMs));
  const sink = await startHelper("http-sink.ts", []);
  const pool = new Pool(sink.url, { connections: SMALL_REQUEST_CONCURRENCY });
  const loopback: LoopbackRun[] = [];
  const small: { perSecond: number; cpuSeconds: number }[] = [];
  try {
    for (const _ of runs) loopback.push(await loopbackRun(pool, sink.pid, budget.loopbackBytes / 2, data));
    for (const _ of runs) small.push(await smallRequests(pool, sink.pid, budget.cpuCeilingMs, data));
  } finally {
    await pool.close();
    await sink.stop();
  }
  const plain: DiskRun[] = [];
  const synced: DiskRun[] = [];
  const direct = (await probeDirectIo(directory)).supported;
  for (const _ of runs) plain.push(await diskRun(directory, budget.diskBytes, false, direct, data));
  for (const _ of runs) synced.push(await diskRun(directory, budget.diskBytes / 2, true, direct, data));
  return {
    encodeMBps: spread(encode),
    md5MBps: spread(md5),
    loopbackPutMBps: spread(loopback.map((run) => run.putMBps)),
    loopbackGetMBps: spread(loopback.map((run) => run.getMBps)),
    loopbackCpuSecondsPerGB: spread(loopback.map((run) => run.cpuSecondsPerGB)),
    smallRequestsPerSecond: spread(small.map((run) => run.perSecond)),
    smallRequestCpuSeconds: spread(small.map((run) => run.cpuSeconds)),
    diskWriteMBps: spread(plain.map((run) => run.megabytesPerSecond)),
    diskWriteFsyncPerMiBMBps: spread(synced.map((run) => run.megabytesPerSecond)),
    diskWriteCpuSecondsPerGB: spread(plain.map((run) => run.cpuSecondsPerGB)),
    diskWriteDirect: direct,
  };
}
