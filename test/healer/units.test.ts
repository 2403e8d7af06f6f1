/**
 * The healer's pieces on their own: settings from the environment (every bad value named),
 * the throttle, the risk-ordered queue, the detector's states on a fake clock, the target
 * placement keeping surviving indexes, the scan's record order against the storage node's
 * own key bytes, and the CLI's renderings and map edits.
 */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../core/settings.js";
import type { NodeHealth, StorageNode } from "../../core/storage-api.js";
import { Cluster } from "../../gateway/objects/cluster.js";
import { FailureDetector } from "../../gateway/healer/detector.js";
import { compareRecords } from "../../gateway/healer/record-merge.js";
import { HEALER_SETTINGS_DEFAULT, healerSettingsFromEnv, parseByteSize } from "../../gateway/healer/settings.js";
import { effectiveMap, placerOf, targetPlacement } from "../../gateway/healer/target-placement.js";
import { Throttle } from "../../gateway/healer/throttle.js";
import { WorkQueue, type Settle, type WorkItem } from "../../gateway/healer/work-queue.js";
import { parseClusterMap } from "../../placement/cluster-map.js";
import { recordKey } from "../../storage-node/record-keys.js";
import { applyEdit, type RawMap } from "../../bin/map-edit.js";
import { formatBytes, formatDuration, progressBar, renderClusterStatus, renderHealStatus } from "../../bin/admin-format.js";
import { Prng, seedFromEnv } from "../prng.js";
import type { HealerStatus } from "../../gateway/healer/status.js";

const SEED = seedFromEnv(0x5eed_4ea2);

describe("healer settings", () => {
  it("takes defaults, overrides from TESSERA_HEAL_*, and names every bad value", () => {
    expect(healerSettingsFromEnv({})).toEqual(HEALER_SETTINGS_DEFAULT);
    expect(healerSettingsFromEnv({ TESSERA_HEAL: "off", TESSERA_HEAL_CONCURRENCY: "3", TESSERA_HEAL_BANDWIDTH: "50MiB" })).toMatchObject({ enabled: false, concurrency: 3, bandwidthBytesPerSecond: 50 * 1024 * 1024 });
    const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
      [{ TESSERA_HEAL: "maybe" }, /TESSERA_HEAL: must be 'on' or 'off', got 'maybe'/],
      [{ TESSERA_HEAL_CONCURRENCY: "0" }, /TESSERA_HEAL_CONCURRENCY: must be a whole number in 1\.\.256, got '0'/],
      [{ TESSERA_HEAL_CONCURRENCY: "2.5" }, /TESSERA_HEAL_CONCURRENCY/],
      [{ TESSERA_HEAL_BANDWIDTH: "fast" }, /TESSERA_HEAL_BANDWIDTH: must be bytes per second/],
      [{ TESSERA_HEAL_PROBE_TIMEOUT_MS: "5000" }, /TESSERA_HEAL_PROBE_TIMEOUT_MS: must be at most TESSERA_HEAL_PROBE_INTERVAL_MS/],
      [{ TESSERA_HEAL_SUSPECT_AFTER_MS: "1000" }, /TESSERA_HEAL_SUSPECT_AFTER_MS: must be above TESSERA_HEAL_PROBE_INTERVAL_MS/],
      [{ TESSERA_HEAL_DOWN_AFTER_MS: "4000" }, /TESSERA_HEAL_DOWN_AFTER_MS: must be at least TESSERA_HEAL_SUSPECT_AFTER_MS/],
    ];
    for (const [env, message] of cases) {
      expect(() => healerSettingsFromEnv(env)).toThrow(UsageError);
      expect(() => healerSettingsFromEnv(env)).toThrow(message);
    }
    expect(parseByteSize("0")).toBe(0);
    expect(parseByteSize("10 MB")).toBe(10_000_000);
    expect(parseByteSize("-1")).toBeUndefined();
  });
});

describe("throttle", () => {
  it("lets a burst through, then paces to the rate; 0 is unlimited; the rate changes at run time", async () => {
    let now = 0;
    const throttle = new Throttle(1024 * 1024, () => now);
    await throttle.take(16 * 1024 * 1024);
    let passed = false;
    const waiting = throttle.take(1024 * 1024).then(() => (passed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(passed).toBe(false);
    now += 1000;
    await waiting;
    throttle.bytesPerSecond = 0;
    await throttle.take(1024 ** 3);
  });
});

function item(key: string, spare: number, settle?: Settle): WorkItem {
  return { bucket: "b", key, spare, size: 1, bytesToWrite: 1, seeds: [], verify: false, source: "scan", ...(settle === undefined ? {} : { settle }) };
}

describe("work queue", () => {
  it("hands out the fewest spare shards first, first come first served within a level, one entry per key", async () => {
    const queue = new WorkQueue(10);
    const ends: string[] = [];
    await queue.push(item("a", 1));
    await queue.push(item("b", 0));
    await queue.push(item("c", 1));
    await queue.push(item("d", -1));
    // Riskier than the queued "a": it takes a's place at spare 0.
    await queue.push(item("a", 0, (end) => ends.push(`a ${end}`)));
    // Less risky than the queued "b", and asks for verification: b keeps its place, verifies,
    // and this producer learns how b's one repair ends (a repair-list entry stays until done).
    await queue.push({ ...item("b", 2, (end) => ends.push(`b ${end}`)), verify: true });
    expect(ends).toEqual([]);
    const taken = [queue.take(), queue.take(), queue.take(), queue.take(), queue.take()];
    expect(taken.map((each) => each?.key)).toEqual(["d", "b", "a", "c", undefined]);
    expect(taken.map((each) => each?.verify)).toEqual([false, true, false, false, undefined]);
    taken[1]?.settle?.("left");
    taken[2]?.settle?.("done");
    expect(ends).toEqual(["b left", "a done"]);
  });

  it("makes producers wait while full", async () => {
    const queue = new WorkQueue(1);
    await queue.push(item("a", 0));
    let pushed = false;
    const second = queue.push(item("b", 0)).then(() => (pushed = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(pushed).toBe(false);
    queue.take();
    await second;
    expect(queue.take()?.key).toBe("b");
  });
});

function sixNodeMap(nodes = 6): ReturnType<typeof parseClusterMap> {
  return parseClusterMap({ epoch: 1, ec: { k: 4, m: 2 }, nodes: Array.from({ length: nodes }, (_, index) => ({ id: `n${index + 1}`, url: `http://127.0.0.1:${23001 + index}`, disks: [{ id: "d0" }, { id: "d1" }] })) }, "units");
}

describe("failure detector", () => {
  it("goes ok -> suspect -> down on a silent node, back to ok when it answers, and fails disks one by one", async () => {
    let now = 1_000_000;
    const answers = new Map<string, NodeHealth | Error>();
    const node = (id: string): StorageNode =>
      ({
        nodeId: id,
        health: async () => {
          const answer = answers.get(id);
          if (answer instanceof Error) throw answer;
          return answer ?? { nodeId: id, disks: [{ diskId: "d0", state: "ok", freeBytes: 1, usedBytes: 1, shardCount: 0, recordCount: 0 }, { diskId: "d1", state: "ok", freeBytes: 1, usedBytes: 1, shardCount: 0, recordCount: 0 }] };
        },
      }) as unknown as StorageNode;
    const map = sixNodeMap();
    const cluster = new Cluster(map, new Map(map.nodes.map((each) => [each.id, node(each.id)])));
    const detector = new FailureDetector({ cluster, probeIntervalMs: 100, probeTimeoutMs: 100, suspectAfterMs: 300, downAfterMs: 1000, now: () => now });
    await detector.probeAll();
    expect(detector.settled).toBe(true);
    answers.set("n2", new Error("connection refused"));
    now += 100;
    await detector.probeAll();
    expect(detector.nodeState("n2")).toBe("ok");
    now += 300;
    await detector.probeAll();
    expect(detector.nodeState("n2")).toBe("suspect");
    expect(detector.readable("n2", "d0")).toBe(false);
    expect(detector.outDisks().size).toBe(0);
    now += 700;
    await detector.probeAll();
    expect(detector.nodeState("n2")).toBe("down");
    expect([...detector.outDisks()].sort()).toEqual(["n2/d0", "n2/d1"]);
    answers.set("n3", { nodeId: "n3", disks: [{ diskId: "d0", state: "failed", reason: "EIO", freeBytes: 0, usedBytes: 0, shardCount: 0, recordCount: 0 }, { diskId: "d1", state: "ok", freeBytes: 1, usedBytes: 1, shardCount: 0, recordCount: 0 }] });
    answers.delete("n2");
    now += 100;
    await detector.probeAll();
    expect(detector.nodeState("n2")).toBe("ok");
    expect([...detector.outDisks()]).toEqual(["n3/d0"]);
    expect(detector.events().map((event) => `${event.nodeId}${event.diskId === undefined ? "" : `/${event.diskId}`} ${event.from}->${event.to}`)).toEqual([
      "n2 ok->suspect",
      "n2 suspect->down",
      "n2 down->ok",
      "n2/d0 unknown->ok",
      "n2/d1 unknown->ok",
      "n3/d0 ok->failed",
    ]);
  });
});

describe("target placement", () => {
  it("keeps every surviving shard's index and replaces only the out disks'", () => {
    const map = sixNodeMap(8);
    const prng = new Prng(SEED);
    for (let round = 0; round < 200; round++) {
      const objectId = prng.bytes(16);
      const placement = placerOf(map)?.place(objectId) ?? [];
      const record = { objectId: objectId.toString("hex"), ec: { k: 4, m: 2 }, placement: placement.map((disk, shardIndex) => ({ shardIndex, nodeId: disk.nodeId, diskId: disk.diskId })) };
      const lost = placement[prng.int(0, 5)];
      const out = new Set([lost?.key ?? ""]);
      const target = targetPlacement(placerOf(effectiveMap(map, out)), record as never) ?? [];
      expect(target).toHaveLength(6);
      target.forEach((location, index) => {
        const before = placement[index];
        if (before?.key !== lost?.key) expect(`${location.nodeId}/${location.diskId}`).toBe(before?.key);
        else expect(out.has(`${location.nodeId}/${location.diskId}`)).toBe(false);
      });
    }
    expect(effectiveMap(map, new Set())).toBe(map);
  });

  it("places a small object's 1 + m copies on the first disks of the key's placement, where writers put them, and moves only an out disk's copy", () => {
    const map = sixNodeMap(8);
    const placer = placerOf(map);
    const prng = new Prng(SEED + 2);
    for (let round = 0; round < 200; round++) {
      const objectId = prng.bytes(16);
      const placement = placer?.place(objectId) ?? [];
      const copies = placement.slice(0, 3).map((disk, shardIndex) => ({ shardIndex, nodeId: disk.nodeId, diskId: disk.diskId }));
      const record = { objectId: objectId.toString("hex"), ec: { k: 1, m: 2 }, placement: copies };
      // Healthy: already where the healer wants it (a placement of its own width would move most).
      expect(targetPlacement(placer, record as never)).toEqual(copies);
      const lost = copies[prng.int(0, 2)] as (typeof copies)[number];
      const out = new Set([`${lost.nodeId}/${lost.diskId}`]);
      const target = targetPlacement(placerOf(effectiveMap(map, out)), record as never) ?? [];
      expect(target).toHaveLength(3);
      target.forEach((location, index) => {
        const before = copies[index] as (typeof copies)[number];
        if (before !== lost) expect(location).toEqual(before);
        else expect(out.has(`${location.nodeId}/${location.diskId}`)).toBe(false);
      });
      expect(new Set(target.map((location) => `${location.nodeId}/${location.diskId}`)).size).toBe(3);
      // The replacement stays among the key's placement under the full map: the disks a GET asks.
      const asked = new Set(placement.map((disk) => `${disk.nodeId}/${disk.diskId}`));
      expect(target.every((location) => asked.has(`${location.nodeId}/${location.diskId}`))).toBe(true);
    }
  });
});

describe("record order of the scan merge", () => {
  it("agrees with the storage node's record-key bytes, Unicode and NUL bytes included", () => {
    const prng = new Prng(SEED + 1);
    const alphabet = ["a", "b", "z", "A", "0", "/", "\u0000", "\u0001", "é", "\u{1f600}", "\uffff", "\ue000"];
    const text = (length: number): string => Array.from({ length }, () => alphabet[prng.int(0, alphabet.length - 1)]).join("");
    const positions = Array.from({ length: 400 }, () => ({ bucket: ["a", "ab", "b", ".tessera-parts"][prng.int(0, 3)] as string, key: text(prng.int(1, 4)), versionId: prng.bytes(16).toString("hex") }));
    const byNode = [...positions].sort((a, b) => Buffer.compare(recordKey(a.bucket, a.key, a.versionId), recordKey(b.bucket, b.key, b.versionId)));
    const byGateway = [...positions].sort(compareRecords);
    expect(byGateway).toEqual(byNode);
  });
});

describe("CLI renderings and map edits", () => {
  it("renders a status with its progress bar, risk and ETA, and a cluster table", () => {
    expect(progressBar(0.5, 10)).toBe("[#####.....]  50%");
    expect(formatBytes(1_234_567)).toBe("1.2 MB");
    expect(formatDuration(3725)).toBe("1h02m");
    const status = {
      now: 10_000,
      startedAt: 0,
      state: "repairing",
      quiet: false,
      epoch: 3,
      ec: { k: 4, m: 2 },
      outDisks: ["n4/d0"],
      history: [],
      totals: { objectsScanned: 10, bytesScanned: 1e9, objectsQueued: 10, objectsRepaired: 4, objectsHealthy: 0, objectsDegraded: 0, objectsFailed: 0, shardsRebuilt: 4, shardsCopied: 0, shardsReused: 0, corruptFound: 0, garbageRemoved: 0, orphanShardsRemoved: 0, objectsScrubbed: 0, bytesScrubbed: 0, bytesRead: 4e8, bytesWritten: 1e8 },
      atRisk: { "0": 2, "1": 4, "2": 1 },
      queue: { length: 5, inFlight: 1, bySpare: {}, bytesToWrite: 0 },
      rebuildBytesPerSecond: 5e6,
      bytesLeft: 1e8,
      etaSeconds: 20,
      throttle: { concurrency: 8, bandwidthBytesPerSecond: 0 },
      lastCompleted: {},
      retired: [],
      drained: [],
      recentFailures: [],
      nodes: [],
      events: [],
    } as unknown as HealerStatus;
    const text = renderHealStatus(status);
    expect(text).toContain("[####################....................]  50%");
    expect(text).toContain("at risk: 2 with 0 spare, 4 with 1 spare");
    expect(text).toContain("rebuild 5.0 MB/s  ETA 20s");
    expect(text).toContain("out: n4/d0");
    const cluster = renderClusterStatus({ epoch: 3, ec: { k: 4, m: 2, blockSize: 1048576 }, zones: ["default"], nodes: [{ id: "n1", role: "member", state: "down", since: 0, url: "http://x:1", zone: "default", disks: [{ id: "d0", weight: 1, state: "unknown", out: true, freeBytes: 0, usedBytes: 5e9, shardCount: 3, recordCount: 3, since: 0 }] }], totals: { nodes: 1, nodesUp: 0, disks: 1, disksOut: 1, usedBytes: 5e9, freeBytes: 0 } }, 60_000);
    expect(cluster).toContain("nodes 1 (0 up)  disks 1 (1 out)");
    expect(cluster).toMatch(/n1\s+member\s+down\s+1m00s ago\s+default\s+http:\/\/x:1\s+d0\s+1\s+unknown\s+5\.0 GB\s+0 B\s+3\s+3\s+OUT/);
  });

  it("edits a map one change at a time, raising the epoch, and refuses bad edits by name", () => {
    const raw: RawMap = { epoch: 4, zones: ["z1"], nodes: [1, 2, 3, 4, 5, 6].map((index) => ({ id: `n${index}`, url: `http://127.0.0.1:${9100 + index}`, zone: "z1", disks: [{ id: "d0" }] })) };
    const added = applyEdit(raw, { kind: "add-node", node: { id: "n7", url: "http://127.0.0.1:9107", disks: [{ id: "d0", weight: 2 }] } }, "map.json");
    expect(added.epoch).toBe(5);
    expect(added.nodes[6]).toEqual({ id: "n7", url: "http://127.0.0.1:9107", zone: "z1", disks: [{ id: "d0", weight: 2 }] });
    expect(raw.nodes).toHaveLength(6);
    expect(applyEdit(added, { kind: "remove-node", nodeId: "n7" }, "map.json").nodes).toHaveLength(6);
    expect(applyEdit(raw, { kind: "set-weight", nodeId: "n1", diskId: "d0", weight: 3 }, "map.json").nodes[0]?.disks[0]?.weight).toBe(3);
    expect(() => applyEdit(raw, { kind: "remove-node", nodeId: "n1" }, "map.json")).toThrow(/ec.k \+ ec.m = 6 needs at least 6 disks, the map has 5/);
    expect(() => applyEdit(raw, { kind: "remove-node", nodeId: "n9" }, "map.json")).toThrow(/the map has no node n9/);
    expect(() => applyEdit(raw, { kind: "add-node", node: { id: "n1", url: "http://127.0.0.1:1", disks: [{ id: "d0" }] } }, "map.json")).toThrow(/already has a node n1/);
    expect(() => applyEdit(raw, { kind: "remove-disk", nodeId: "n1", diskId: "d0" }, "map.json")).toThrow(/n1's last: remove the node instead/);
  });
});
