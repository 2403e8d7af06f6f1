/**
 * The bench's pieces without a cluster and without timing anything (numbers live in bench/,
 * never in tests): seeded object data and its byte-for-byte check, min/median/max and
 * percentiles, the model bounds, and that a results document renders to markdown and SVG.
 */
import { describe, expect, it } from "vitest";
import type { Ceilings } from "../bench/ceilings.js";
import { renderChart } from "../bench/chart.js";
import { DataPool } from "../bench/data.js";
import { DEGRADED_AFTER_CONDITION, DEGRADED_BASELINE_CONDITION, MiB } from "../bench/limits.js";
import { bound, type ModelInputs } from "../bench/model.js";
import { renderMarkdown, type BenchResults } from "../bench/report.js";
import { percentile, spread } from "../bench/stats.js";
import { summarize } from "../bench/workload.js";

const one = (value: number) => spread([value]);
const ceilings: Ceilings = {
  encodeMBps: one(5000),
  md5MBps: one(600),
  loopbackPutMBps: one(1000),
  loopbackGetMBps: one(1000),
  loopbackCpuSecondsPerGB: one(1.5),
  smallRequestsPerSecond: one(2000),
  smallRequestCpuSeconds: one(250e-6),
  diskWriteMBps: one(600),
  diskWriteFsyncPerMiBMBps: one(280),
  diskWriteCpuSecondsPerGB: one(1),
  diskWriteDirect: true,
};
const inputs: ModelInputs = { ceilings, cores: 2, k: 4, m: 2 };

describe("bench pieces", () => {
  it("object data is seeded, distinct per object, and checked byte for byte", () => {
    const pool = new DataPool(7, 3 * MiB + 5);
    const again = new DataPool(7, 3 * MiB + 5);
    expect(pool.whole(3, 4096).equals(again.whole(3, 4096))).toBe(true);
    expect(pool.whole(3, 4096).equals(pool.whole(4, 4096))).toBe(false);
    const size = 5 * MiB + 3; // wraps around the pool
    const verifier = pool.verifier(9, size);
    for (const piece of pool.pieces(9, size)) verifier.feed(piece);
    expect(() => verifier.end()).not.toThrow();
    const bad = pool.verifier(9, 4096);
    const copy = Buffer.from(pool.whole(9, 4096));
    copy[100] = (copy[100] as number) ^ 1;
    expect(() => bad.feed(copy)).toThrow("different bytes");
    const short = pool.verifier(9, 4096);
    short.feed(pool.whole(9, 4095));
    expect(() => short.end()).toThrow("4095 of the 4096");
  });

  it("spreads and percentiles", () => {
    expect(spread([3, 1, 2])).toEqual({ min: 1, median: 2, max: 3 });
    expect(spread([4, 1, 2, 3]).median).toBe(2.5);
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([5, 1, 4, 2, 3], 99)).toBe(5);
  });

  it("model bounds: the issue's planning numbers, with the disk writes' CPU, give about 270 MB/s PUT and 670 MB/s GET", () => {
    const put = bound(inputs, "PUT", 64 * MiB);
    expect(put.by).toBe("CPU");
    // 1 + 1.5 hops, MD5, encode, and 1.5 GB written per GB at 1 CPU s/GB.
    expect(Math.round(put.megabytesPerSecond)).toBe(Math.round(2000 / (1.5 * 2.5 + 1000 / 600 + 1000 / 5000 + 1.5 * 1)));
    expect(bound({ ...inputs, ceilings: { ...ceilings, diskWriteCpuSecondsPerGB: one(3) } }, "PUT", 64 * MiB).megabytesPerSecond).toBeLessThan(put.megabytesPerSecond);
    expect(Math.round(bound(inputs, "GET", 64 * MiB).megabytesPerSecond)).toBe(667);
    expect(bound({ ...inputs, ceilings: { ...ceilings, diskWriteMBps: one(300) } }, "PUT", 64 * MiB).by).toBe("disk");
  });

  it("model bounds of 4 KiB objects: a PUT is 1 + k + m round trips, a GET 1 + k", () => {
    const perSecond = (operation: "PUT" | "GET") => (bound(inputs, operation, 4096).megabytesPerSecond * 1e6) / 4096;
    const trip = inputs.ceilings.smallRequestCpuSeconds.median;
    expect(perSecond("PUT")).toBeCloseTo(inputs.cores / ((1 + inputs.k + inputs.m) * trip), 6);
    expect(perSecond("GET")).toBeCloseTo(inputs.cores / ((1 + inputs.k) * trip), 6);
  });

  /** A results document of `cells` on a made-up machine, as bench/run.ts writes one. */
  const document = (cells: BenchResults["cells"], peakRssBytes: BenchResults["peakRssBytes"]): BenchResults => ({
    startedAt: "2026-01-01T00:00:00.000Z",
    durationSeconds: 1,
    machine: { cpu: "test", cores: 2, memoryGiB: 1, kernel: "Linux", node: "20", filesystem: "ext4", loadAverage: { start: 0, end: 0 } },
    options: { quick: true, seed: 1, runs: 3, runMs: 100 },
    ceilings,
    model: [],
    cells,
    peakRssBytes,
    rebuild: { status: "pending", note: "test" },
    skipped: [],
  });

  it("a results document renders to markdown and SVG", () => {
    const run = { bytes: 64 * MiB * 4, operations: 4, seconds: 2, latencyMs: { p50: 10, p99: 20 }, cpuSeconds: { gateway: 1, n1: 0.5, client: 0.1 } };
    const cell = summarize("tessera", { operation: "PUT", size: 64 * MiB, concurrency: 4, condition: "healthy" }, [run, run, run]);
    const results = document([cell], { tessera: { gateway: 100 * MiB } });
    const markdown = renderMarkdown(results, inputs, [64 * MiB], [4]);
    expect(markdown).toContain("| PUT | 64 MiB | 4 |");
    expect(markdown).toContain("| tessera | gateway | 100 MiB |");
    expect(renderChart(results, inputs, [64 * MiB])).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
  });

  it("degraded GETs are judged against the mean of the healthy GETs measured just before the nodes stopped and once they were back", () => {
    const get = (condition: string, seconds: number) => {
      const run = { bytes: 100e6, operations: 4, seconds, latencyMs: { p50: 10, p99: 20 }, cpuSeconds: { gateway: 1 } };
      return summarize("tessera", { operation: "GET", size: 64 * MiB, concurrency: 4, condition }, [run, run, run]);
    };
    const rowOf = (cells: ReturnType<typeof get>[]) =>
      renderMarkdown(document(cells, {}), inputs, [64 * MiB], [4])
        .split("\n")
        .find((line) => line.startsWith("| degraded: 1 node stopped (n1) |"));
    // 200 MB/s in the matrix, 100 just before, 80 degraded, 60 once back: the load drifted down
    // through the degraded cell, which is level with the mean of its neighbours (80), -60% against the matrix's.
    const degraded = get("degraded: 1 node stopped (n1)", 1.25);
    const drifting = [get("healthy", 0.5), get(DEGRADED_BASELINE_CONDITION, 1), degraded, get(DEGRADED_AFTER_CONDITION, 100 / 60)];
    expect(rowOf(drifting)).toBe("| degraded: 1 node stopped (n1) | 64 MiB | 4 | 80 (80–80) MB/s | 100 (100–100) MB/s | 60 (60–60) MB/s | 0% | 200 (200–200) MB/s | -60% |");
    // Without the cell after (a run cut short), the cell before alone is the baseline.
    expect(rowOf(drifting.slice(0, 3))).toBe("| degraded: 1 node stopped (n1) | 64 MiB | 4 | 80 (80–80) MB/s | 100 (100–100) MB/s | – | -20% | 200 (200–200) MB/s | -60% |");
  });

  it("the rebuild line states the gateway's peak RSS during the rebuild when it was measured", () => {
    const rebuild = { status: "measured" as const, note: "test", megabytesPerSecond: 50, cpuSecondsPerGB: { gateway: 10, nodes: 5 } };
    const line = (result: BenchResults["rebuild"]) => renderMarkdown({ ...document([], {}), rebuild: result }, inputs, [64 * MiB], [4]).split("\n").find((text) => text.startsWith("50.0 MB/s of shards restored"));
    expect(line({ ...rebuild, gatewayPeakRssBytes: 300 * MiB })).toContain("Gateway peak RSS during the rebuild: 300 MiB.");
    expect(line(rebuild)).not.toContain("Gateway peak RSS");
  });

  it("the gateway's peak RSS is listed per phase of the run, in the order measured", () => {
    const phases = { "4 KiB cells": 150 * MiB, "64 MiB cells": 230 * MiB, "1 GiB object": 210 * MiB, rebuild: 260 * MiB };
    const markdown = renderMarkdown({ ...document([], { tessera: { gateway: 260 * MiB } }), gatewayPeakRssBytesByPhase: phases }, inputs, [64 * MiB], [4]);
    const table = markdown.slice(markdown.indexOf("| phase | gateway peak RSS |")).split("\n").slice(2, 6);
    expect(table).toEqual(["| 4 KiB cells | 150 MiB |", "| 64 MiB cells | 230 MiB |", "| 1 GiB object | 210 MiB |", "| rebuild | 260 MiB |"]);
    expect(renderMarkdown(document([], {}), inputs, [64 * MiB], [4])).not.toContain("| phase |");
  });

  it("the degraded table states its own number of runs, which differs from the matrix's", () => {
    const run = { bytes: 100e6, operations: 4, seconds: 1, latencyMs: { p50: 10, p99: 20 }, cpuSeconds: { gateway: 1 } };
    const spec = { operation: "GET", size: 64 * MiB, concurrency: 4 } as const;
    const cells = [summarize("tessera", { ...spec, condition: "healthy" }, [run, run, run]), summarize("tessera", { ...spec, condition: "degraded: 1 node stopped (n1)" }, [run, run, run, run, run])];
    const markdown = renderMarkdown(document(cells, {}), inputs, [64 * MiB], [4]);
    expect(markdown).toContain("median (min–max) over 3 runs of 0.1 s");
    expect(markdown.slice(markdown.indexOf("## Degraded GET"))).toContain("Each figure in this table: median (min–max) over 5 runs.");
  });
});
