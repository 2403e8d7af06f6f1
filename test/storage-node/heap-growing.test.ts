/**
 * A storage node's V8 heap tuning (core/role-process.ts, NODE_HEAP_GROWING_PERCENT) as a real
 * node process applies it: V8's own trace (--trace-gc-verbose, given to node itself) prints the
 * factor each full collection sets the next old-generation limit with, and that factor is
 * 1 + percent / 100: 2.5 with TESSERA_HEAP_GROWING_PERCENT=150, which proves the setting
 * reaches V8, and 4.0 at the node's default. V8's own rule (0) also picks 4.0 for a young
 * process's first collections (1.1-2.3 later, in the runs traced), so the default's factor alone
 * would not tell the setting from V8's choice, and the own rule's is only reported.
 *
 * The trace line's format is V8's ("[HeapController] Limit: old size: ... KB, new limit: ... KB
 * (4.0)"), that of the Node.js 20 the project runs on. What the factor does to a node's CPU is
 * measured, not tested: bench/node-batch.ts --shards, and bench/README.md, "Fixes and their effect".
 * Also here: the harness starts a node as tessera local does, with the roles' malloc settings
 * (core/role-process.ts, ROLE_MALLOC_ENV) and the supervisor pid it watches (bin/cli.ts).
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { shardLayout } from "../../core/shard-format.js";
import { NODE_HEAP_GROWING_PERCENT } from "../../storage-node/main.js";
import { Prng } from "../prng.js";
import { startNode, useNodeHarness } from "./harness.js";
import { inPieces, makeShard, shardOfObject } from "./shards.js";

const MiB = 1024 * 1024;
/** The shards of 1 MiB objects at 4+2 (256 KiB each), as a node receives them from 1 MiB PUTs. */
const OBJECT_BYTES = MiB;
/** Shards written between looks at the trace (about 26 MB). */
const ROUND_SHARDS = 100;
/** Rounds at most before the first full collection: its initial limit is reached within 200 MB in every run seen. */
const ROUNDS_MAX = 20;
const WRITERS = 8;
/** Body pieces as a socket delivers them. */
const PIECE_BYTES = 64 * 1024;
const SEED = 0x6e0d;
const LIMIT_LINE = /\[HeapController\] Limit: old size: \d+ KB, new limit: \d+ KB \((\d+\.\d)\)/g;

useNodeHarness();

/** The factor of the node's first full collection under traffic (its heap growing setting from `env`), as V8 traces it. */
async function tracedGrowingFactor(env: NodeJS.ProcessEnv): Promise<string> {
  const prng = new Prng(SEED);
  // All of the trace, not the harness's tail of the output: the tail scrolls as scavenges are
  // traced, and a start-up line leaving it made the count of full collections fall.
  let traced = "";
  const node = await startNode(prng, { env, nodeFlags: ["--trace-gc", "--trace-gc-verbose"], onOutput: (piece) => (traced += piece) });
  try {
    const client = node.client();
    const diskId = node.dirs.diskIds[0] as string;
    const template = await makeShard(prng, { objectLength: OBJECT_BYTES, blockBytes: MiB, shardIndex: 0 });
    const chunk = prng.bytes(shardLayout(template.header).chunkBytes);
    const writeRound = async (): Promise<void> => {
      let next = 0;
      const writer = async (): Promise<void> => {
        while (next < ROUND_SHARDS) {
          next += 1;
          const { id, file } = await shardOfObject(template, prng.bytes(16), [chunk]);
          await client.writeShard(diskId, id, inPieces(file, PIECE_BYTES), file.length);
        }
      };
      await Promise.all(Array.from({ length: WRITERS }, writer));
    };
    // Collections while the node starts (loading its code) are set with V8's start-up factor
    // whatever the setting: the one that counts is the first under traffic.
    const factors = (): string[] => [...traced.matchAll(LIMIT_LINE)].map((match) => match[1] as string);
    const atStart = factors().length;
    for (let round = 0; round < ROUNDS_MAX && factors().length === atStart; round++) await writeRound();
    const found = factors();
    expect(found.length, "a full collection under traffic within the rounds").toBeGreaterThan(atStart);
    return found[atStart] as string;
  } finally {
    await node.stop();
  }
}

describe("storage node heap tuning", () => {
  it(`grows the old generation by ${NODE_HEAP_GROWING_PERCENT}% by default, and by what TESSERA_HEAP_GROWING_PERCENT says`, async () => {
    const [byDefault, overridden, ownRule] = [await tracedGrowingFactor({}), await tracedGrowingFactor({ TESSERA_HEAP_GROWING_PERCENT: "150" }), await tracedGrowingFactor({ TESSERA_HEAP_GROWING_PERCENT: "0" })];
    console.log(`V8's growing factor: default ${byDefault}, at 150% ${overridden}, under V8's own rule ${ownRule}`);
    expect(byDefault).toBe((1 + NODE_HEAP_GROWING_PERCENT / 100).toFixed(1));
    expect(overridden).toBe("2.5");
  });
});

describe("a test's storage node process", () => {
  it("starts with the roles' malloc settings and watches the test process's pid (it stops itself if the run is killed)", async () => {
    const node = await startNode(new Prng(SEED), { logLevel: "info" });
    try {
      const environ = (await readFile(`/proc/${node.pid}/environ`, "utf8")).split("\0");
      expect(environ).toEqual(expect.arrayContaining(["MALLOC_ARENA_MAX=2", "MALLOC_MMAP_THRESHOLD_=131072", `TESSERA_SUPERVISOR_PID=${process.pid}`]));
      expect(node.output()).toContain(`"malloc":"MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072"`);
    } finally {
      await node.stop();
    }
  });
});
