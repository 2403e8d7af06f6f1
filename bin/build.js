// Compiles Tessera's TypeScript sources to JavaScript in dist/ (esbuild, one output file per
// source, no bundling), which `bin/tessera.js` runs whenever it is at least as new as every
// source. Running the sources through tsx's loader instead costs each process a loader
// thread (its own V8 isolate) and the transpiled code and source maps that tsx keeps: about
// 40 MiB of resident memory per process (measured on an idle gateway: 154 MiB through tsx,
// 110 MiB from dist/), in the gateway and in every storage node.
//
//   node bin/build.js             build dist/ (npm ci and npm install do it: `prepare`)
//   node bin/build.js --if-stale  build only if a source is newer than dist/ (npm start, the
//                                 tests' global setup and the bench do it)
//
// Plain JavaScript, so it runs before anything is compiled.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, copyFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

/** The checkout: its dist/ is the build (every function takes another root, for tests). */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** What the processes run: every folder a process imports from (tests and bench run through vitest and tsx). */
const SOURCE_DIRS = ["core", "gateway", "storage-node", "placement", "bin"];
/** Files read at run time next to the code that reads them (new URL(name, import.meta.url)). */
const DATA_FILES = ["core/codec-vectors.json"];
/** Written last by a build: which sources it compiled and the newest of their modification times. */
const STAMP = "BUILD.json";

/** Every source file a build compiles or copies, relative to `root`, sorted. */
function sourceFiles(root) {
  const found = [...DATA_FILES];
  const walk = (dir) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) found.push(path);
    }
  };
  for (const dir of SOURCE_DIRS) walk(dir);
  return found.sort();
}

function newestMtimeMs(root, files) {
  return Math.max(...files.map((file) => statSync(join(root, file)).mtimeMs));
}

/**
 * True when dist/ holds a complete build of exactly the current sources, none of them
 * modified since: a stat of each source (about 150), a millisecond or two.
 */
export function distIsFresh(root = ROOT) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, "dist", STAMP), "utf8"));
  } catch {
    return false;
  }
  let files;
  try {
    files = sourceFiles(root);
  } catch {
    return false; // a source folder is missing: run the sources, which will say what is wrong
  }
  if (!Array.isArray(stamp.files) || stamp.files.join("\n") !== files.join("\n")) return false;
  try {
    return newestMtimeMs(root, files) <= stamp.newestMtimeMs;
  } catch {
    return false; // a source vanished between the listing and the stat: rebuild
  }
}

/**
 * Builds into a fresh directory beside dist/ and swaps it in, so a process starting meanwhile
 * sees either the old complete build, or no dist/ (and runs the sources), never half of one.
 * The modification times are read before compiling: a source edited during the build makes
 * the build stale at once.
 */
export async function build(root = ROOT) {
  const started = performance.now();
  const dist = join(root, "dist");
  const files = sourceFiles(root);
  const newest = newestMtimeMs(root, files);
  const { build: esbuild } = await import("esbuild");
  const staging = `${dist}.building-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  await esbuild({
    absWorkingDir: root,
    entryPoints: files.filter((file) => file.endsWith(".ts")),
    outdir: staging,
    outbase: ".",
    format: "esm",
    platform: "node",
    target: "node20",
    // Linked maps, read only under `node --enable-source-maps`: stack traces name dist/ lines otherwise.
    sourcemap: "linked",
    logLevel: "warning",
  });
  for (const file of DATA_FILES) {
    mkdirSync(dirname(join(staging, file)), { recursive: true });
    copyFileSync(join(root, file), join(staging, file));
  }
  writeFileSync(join(staging, STAMP), `${JSON.stringify({ newestMtimeMs: newest, files }, null, 1)}\n`);
  const old = `${dist}.old-${process.pid}`;
  try {
    renameSync(dist, old);
  } catch (error) {
    if (error.code !== "ENOENT") throw error;
  }
  try {
    renameSync(staging, dist);
  } catch (error) {
    // Another build swapped its dist/ in between our two renames: it is of the same sources.
    if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
    rmSync(staging, { recursive: true, force: true });
  }
  rmSync(old, { recursive: true, force: true });
  return { files: files.length, ms: performance.now() - started };
}

/** Builds unless dist/ is fresh; says which. */
export async function buildIfStale(root = ROOT) {
  if (distIsFresh(root)) return { built: false };
  return { built: true, ...(await build(root)) };
}

if (process.argv[1] !== undefined && relative(process.argv[1], fileURLToPath(import.meta.url)) === "") {
  const ifStale = process.argv.includes("--if-stale");
  const unknown = process.argv.slice(2).filter((arg) => arg !== "--if-stale");
  if (unknown.length > 0) {
    console.error(`bin/build.js: unknown argument ${unknown[0]} (usage: node bin/build.js [--if-stale])`);
    process.exit(2);
  }
  const result = ifStale ? await buildIfStale() : { built: true, ...(await build()) };
  if (result.built) console.log(`Built dist/ from ${result.files} sources in ${Math.round(result.ms)} ms`);
}
