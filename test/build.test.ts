/**
 * bin/build.js and the launcher: processes run the compiled dist/ when it is a build of the
 * current sources, the sources otherwise (never a stale build).
 */
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { build, buildIfStale, distIsFresh } from "../bin/build.js";
import { Prng, seedFromEnv } from "./prng.js";
import { startNode, useNodeHarness } from "./storage-node/harness.js";

useNodeHarness();
const prng = new Prng(seedFromEnv(0x5eed_0b1d));

/** The "listening" line's fields of a process's output. */
function listeningLine(output: string): Record<string, unknown> {
  const line = output.split("\n").find((text) => text.includes('"msg":"listening"'));
  expect(line, output).toBeDefined();
  return JSON.parse(line as string) as Record<string, unknown>;
}

describe("the processes tests start", () => {
  it("run dist/, a build of the current sources (the tests' global setup builds it)", async () => {
    expect(distIsFresh()).toBe(true);
    const node = await startNode(prng, { logLevel: "info" });
    expect(listeningLine(node.output()).code).toBe("dist");
    await node.stop();
  });

  it("run the sources through tsx when TESSERA_RUN_SOURCES=1", async () => {
    const node = await startNode(prng, { logLevel: "info", env: { TESSERA_RUN_SOURCES: "1" } });
    expect(listeningLine(node.output()).code).toBe("sources");
    await node.stop();
  });
});

describe("a build of a small tree", () => {
  const roots: string[] = [];
  afterAll(async () => {
    await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
  });

  /** A tree with every folder the build reads: one module per folder, and the codec's vectors. */
  async function tree(): Promise<string> {
    const root = await mkdtemp(join(tmpdir(), "tessera-build-"));
    roots.push(root);
    await writeFile(join(root, "package.json"), '{"type":"module"}\n');
    for (const dir of ["core", "gateway", "storage-node", "placement", "bin"]) await mkdir(join(root, dir));
    await writeFile(join(root, "core", "codec-vectors.json"), '{"vectors":[]}\n');
    await writeFile(join(root, "core", "sum.ts"), "export const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);\n");
    await writeFile(join(root, "gateway", "main.ts"), 'import { sum } from "../core/sum.js";\nexport const total: number = sum([1, 2, 3]);\n');
    for (const dir of ["storage-node", "placement", "bin"]) await writeFile(join(root, dir, "empty.ts"), "export {};\n");
    return root;
  }

  it("compiles every source to runnable JavaScript, with the data files beside it", async () => {
    const root = await tree();
    expect(distIsFresh(root)).toBe(false);
    const result = await build(root);
    expect(result.files).toBe(6);
    expect(distIsFresh(root)).toBe(true);
    const compiled = (await import(pathToFileURL(join(root, "dist", "gateway", "main.js")).href)) as { total: number };
    expect(compiled.total).toBe(6);
    expect(await readFile(join(root, "dist", "core", "codec-vectors.json"), "utf8")).toBe('{"vectors":[]}\n');
    expect((await buildIfStale(root)).built).toBe(false);
  });

  it("is stale once a source is modified, added or removed, and buildIfStale rebuilds it", async () => {
    const root = await tree();
    await build(root);
    const later = new Date(Date.now() + 60_000);
    await utimes(join(root, "core", "sum.ts"), later, later);
    expect(distIsFresh(root)).toBe(false);
    expect((await buildIfStale(root)).built).toBe(true);
    expect(distIsFresh(root)).toBe(true);

    await writeFile(join(root, "placement", "added.ts"), "export const added = 1;\n");
    // Its modification time may equal the build's newest: the file list alone makes it stale.
    await utimes(join(root, "placement", "added.ts"), new Date(0), new Date(0));
    expect(distIsFresh(root)).toBe(false);
    await build(root);
    expect(distIsFresh(root)).toBe(true);

    await rm(join(root, "placement", "added.ts"));
    expect(distIsFresh(root)).toBe(false);
  });

  it("is stale when the build is incomplete (no stamp) or a source folder is gone", async () => {
    const root = await tree();
    await build(root);
    await rm(join(root, "dist", "BUILD.json"));
    expect(distIsFresh(root)).toBe(false);
    await build(root);
    await rm(join(root, "bin"), { recursive: true });
    expect(distIsFresh(root)).toBe(false);
  });
});
