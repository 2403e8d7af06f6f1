/**
 * Shard files with O_DIRECT (storage-node/direct-io.ts): the probe's answer, the flag really
 * on the open file (read from /proc/self/fdinfo), byte-exact shards of every length around
 * the block size and their ranged reads in both modes ("off" is also what a disk whose file
 * system refuses O_DIRECT gets).
 */
import { constants as fsConstants } from "node:fs";
import { mkdtemp, readFile, readdir, readlink, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { frameOffset, shardLayout } from "../../core/shard-format.js";
import { DIRECT_IO_ALIGNMENT, alignDown, alignUp, alignedBuffer, probeDirectIo, type DirectIoMode } from "../../storage-node/direct-io.js";
import { LocalNode } from "../../storage-node/local-node.js";
import { shardPath } from "../../storage-node/shard-files.js";
import { Prng, seedFromEnv } from "../prng.js";
import { contractShard, inPieces, readAll, type ContractShard } from "../storage-contract.js";

const KiB = 1024;
const seed = seedFromEnv(0xd1_0e_c7);
console.log(`direct-io.test seed ${seed} (replay with TEST_SEED=${seed})`);
const prng = new Prng(seed);

const roots: string[] = [];
const nodes: LocalNode[] = [];

async function makeRoot(parent: string, label: string): Promise<string> {
  const root = await mkdtemp(path.join(parent, `tessera-test-dio-${label}-`));
  roots.push(root);
  return root;
}

async function openNode(root: string, directIo: DirectIoMode): Promise<LocalNode> {
  const node = await LocalNode.open({ nodeId: "n1", disks: [{ id: "d1", path: path.join(root, "d1") }], directIo });
  nodes.push(node);
  return node;
}

afterEach(async () => {
  for (const node of nodes.splice(0)) await node.close();
});
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

/** The open flags of this process's descriptor for `file`, from /proc/self/fdinfo (Linux). */
async function openFlagsOf(file: string): Promise<number | undefined> {
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target !== file) continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, "utf8").catch(() => "");
    const flags = /^flags:\s+([0-7]+)$/m.exec(info)?.[1];
    if (flags !== undefined) return parseInt(flags, 8);
  }
  return undefined;
}

describe("alignment helpers", () => {
  it("round to whole blocks and hand out aligned buffers of whole blocks", () => {
    expect([alignDown(0), alignDown(4095), alignDown(4096), alignDown(4097)]).toEqual([0, 0, 4096, 4096]);
    expect([alignUp(0), alignUp(1), alignUp(4096), alignUp(4097)]).toEqual([0, 4096, 4096, 8192]);
    for (const bytes of [1, 80, 4096, 4097, 300 * KiB + 3]) {
      const buffer = alignedBuffer(bytes);
      expect(buffer.length).toBe(alignUp(bytes));
      expect(buffer.byteOffset).toBe(0);
    }
  });
});

describe("probeDirectIo", () => {
  it("answers for the test directory and leaves no probe file behind", async () => {
    const root = await makeRoot(os.tmpdir(), "probe");
    const probe = await probeDirectIo(root);
    expect(typeof probe.supported).toBe("boolean");
    if (!probe.supported) expect(probe.reason).toMatch(/O_DIRECT/);
    expect(await readdir(root)).toEqual([]);
  });
});

describe.each<DirectIoMode>(["auto", "off"])("shard files, direct I/O %s", (mode) => {
  it("opens the temp file with O_DIRECT exactly when the disk takes it", async () => {
    const root = await makeRoot(os.tmpdir(), `flag-${mode}`);
    const direct = mode === "auto" && (await probeDirectIo(root)).supported;
    const node = await openNode(root, mode);
    const shard = await contractShard(prng, { objectLength: 64 * KiB, blockBytes: 16 * KiB });
    const tmpDir = path.join(root, "d1", "tmp");
    let flags: number | undefined;
    async function* body(): AsyncGenerator<Buffer> {
      yield shard.file.subarray(0, 100);
      // The temp file is open now: look at its flags before sending the rest.
      const [temp] = await readdir(tmpDir);
      expect(temp).toBeDefined();
      flags = await openFlagsOf(path.join(tmpDir, temp ?? ""));
      yield shard.file.subarray(100);
    }
    await node.writeShard("d1", shard.id, body(), shard.file.length);
    expect(flags).toBeDefined();
    const oDirect = (fsConstants as { O_DIRECT?: number }).O_DIRECT ?? 0;
    expect(((flags ?? 0) & oDirect) !== 0).toBe(direct);
  });

  it("stores shards of every length around the block size byte for byte, and reads any range of them", async () => {
    const root = await makeRoot(os.tmpdir(), `shapes-${mode}`);
    const node = await openNode(root, mode);
    const blockBytes = 4 * 16 * KiB;
    // Object lengths whose shard files end just before, on and just after block boundaries,
    // and across the node's 1 MiB write batches and read windows.
    const lengths = [0, 1, 4 * (DIRECT_IO_ALIGNMENT - 84), 4 * (DIRECT_IO_ALIGNMENT - 80), 4 * DIRECT_IO_ALIGNMENT, 5 * 1024 * KiB + 3, 9 * 1024 * KiB - 1];
    for (let extra = 0; extra < 4; extra++) lengths.push(prng.int(1, 12 * 1024 * KiB));
    const shards: ContractShard[] = [];
    for (const objectLength of lengths) {
      const shard = await contractShard(prng, { objectLength, blockBytes });
      await node.writeShard("d1", shard.id, inPieces(shard.file, prng.int(1, 200 * KiB)), shard.file.length);
      shards.push(shard);
    }
    const disk = { shardsDir: path.join(root, "d1", "shards") } as Parameters<typeof shardPath>[0];
    for (const shard of shards) {
      expect((await stat(shardPath(disk, shard.id))).size).toBe(shard.file.length);
      expect((await readAll(node.readShard("d1", shard.id))).equals(shard.file)).toBe(true);
      const layout = shardLayout(shard.header);
      if (layout.stripeCount === 0) continue;
      const firstStripe = prng.int(0, layout.stripeCount - 1);
      const stripeCount = prng.int(1, layout.stripeCount - firstStripe);
      const ranged = await readAll(node.readShard("d1", shard.id, { firstStripe, stripeCount }));
      const start = frameOffset(layout, firstStripe);
      expect(ranged.equals(shard.file.subarray(start, start + stripeCount * layout.frameBytes))).toBe(true);
    }
    expect(await readdir(path.join(root, "d1", "tmp"))).toEqual([]);
  });
});
