/**
 * `tessera local` (what `npm start` runs) as a real process tree: it starts six storage nodes
 * and a gateway, prints an endpoint and an aws command that work as printed, stops every child
 * on SIGINT or SIGTERM with exit 0, reuses its map, secret and data on a restart, and names the
 * culprit when a port is taken or a child dies.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SUPERVISOR_CHECK_INTERVAL_MS } from "../bin/cli.js";
import { CHILD_START_TIMEOUT_MS, DEV_ACCESS_KEY, DEV_SECRET_KEY } from "../bin/local-cluster.js";
import { localLayout, NODE_PORT_OFFSET, prepareMap } from "../bin/local-data.js";
import { SupervisedChild, withoutTesseraSettings, type ExitStatus } from "../bin/supervised-child.js";
import { runTessera } from "./cluster-harness.js";
import { Prng, seedFromEnv } from "./prng.js";

/** Ports a local cluster uses: the gateway's and six nodes' at NODE_PORT_OFFSET + 1..6 above it. */
const NODES = 6;
/** Attempts at finding seven free ports in that pattern before giving up. */
const PORT_BLOCK_ATTEMPTS = 50;
/** Lowest gateway port tried: clear of the well-known and registered ports most services take (and of `npm start`'s 9000-9106). */
const PORT_BLOCK_LOW = 20_000;
/** Linux's default start of the ephemeral range (net.ipv4.ip_local_port_range). */
const EPHEMERAL_PORT_LOW_DEFAULT = 32_768;
/** SIGINT to exit of the whole tree: the supervisor's own stop deadlines (10 s per stage) bound it. */
const LOCAL_STOP_TIMEOUT_MS = 25_000;

/** An orphan notices its supervisor is gone within a second (bin/cli.ts), then has its own stop deadline. */
const ORPHAN_EXIT_TIMEOUT_MS = SUPERVISOR_CHECK_INTERVAL_MS + 9_000;

let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "tessera-local-"));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function listen(port: number): Promise<Server | undefined> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(undefined));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => resolve(server));
  });
}

async function close(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * The lowest port the kernel hands out by itself (to listen(0) and to outgoing connections),
 * from /proc/sys/net/ipv4/ip_local_port_range; Linux's default where that cannot be read.
 */
function ephemeralPortLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : EPHEMERAL_PORT_LOW_DEFAULT;
  } catch {
    return EPHEMERAL_PORT_LOW_DEFAULT;
  }
}

/**
 * A gateway port P such that P and P + 101..106 were all free a moment ago, all below the
 * kernel's ephemeral range. The block serves every start in this file, tens of seconds apart;
 * inside the ephemeral range a test running alongside could take one of its ports meanwhile
 * (an outgoing connection's local port, or a listen on port 0), and a node then failed to
 * start with EADDRINUSE. Below it only an explicit bind can.
 */
async function freePortBlock(prng: Prng): Promise<number> {
  const span = NODE_PORT_OFFSET + NODES;
  const highest = Math.min(ephemeralPortLow(), 65_536) - span - 1;
  if (highest <= PORT_BLOCK_LOW) throw new Error(`no room for a block of ports between ${PORT_BLOCK_LOW} and the ephemeral range`);
  for (let attempt = 0; attempt < PORT_BLOCK_ATTEMPTS; attempt++) {
    const base = prng.int(PORT_BLOCK_LOW, highest - 1);
    const ports = [base, ...Array.from({ length: NODES }, (_, index) => base + NODE_PORT_OFFSET + index + 1)];
    const held = await Promise.all(ports.map((port) => listen(port)));
    await Promise.all(held.map((server) => (server === undefined ? undefined : close(server))));
    if (held.every((server) => server !== undefined)) return base;
  }
  throw new Error(`no block of ${NODES + 1} free ports found in ${PORT_BLOCK_ATTEMPTS} attempts`);
}

interface LocalRun {
  readonly child: SupervisedChild;
  output(): string;
}

function startLocal(env: NodeJS.ProcessEnv): LocalRun {
  let output = "";
  const child = SupervisedChild.start({ name: "local", args: ["local"], env: withoutTesseraSettings(process.env, env), detached: false, onLine: (line) => (output += `${line}\n`) });
  return { child, output: () => output };
}

/** Resolves with the printed endpoint once the banner is out; rejects if `local` exits first. */
async function endpointOf(run: LocalRun): Promise<string> {
  const deadline = Date.now() + CHILD_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const match = /S3 endpoint\s+(http:\/\/\S+)/.exec(run.output());
    if (match?.[1] !== undefined && run.output().includes("Press Ctrl-C to stop.")) return match[1];
    if (!run.child.running) throw new Error(`tessera local exited before it was ready:\n${run.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`tessera local printed no endpoint within ${CHILD_START_TIMEOUT_MS} ms:\n${run.output()}`);
}

/** The `tessera` processes whose parent is `parent`, with their command lines (Linux /proc; tsx's esbuild service is left out). */
function childrenOf(parent: number): Array<{ pid: number; command: string }> {
  const found: Array<{ pid: number; command: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the command name, which is in parentheses and may hold spaces: state, ppid, ...
      const ppid = Number(status.slice(status.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) found.push({ pid: Number(entry), command: readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ") });
    } catch {
      // The process exited while we looked.
    }
  }
  return found.filter((child) => child.command.includes("tessera.js"));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function exitWithin(child: SupervisedChild, ms: number): Promise<ExitStatus> {
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

function s3Client(endpoint: string): S3Client {
  return new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: DEV_ACCESS_KEY, secretAccessKey: DEV_SECRET_KEY } });
}

async function bucketNames(endpoint: string): Promise<string[]> {
  const s3 = s3Client(endpoint);
  try {
    return ((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).map((bucket) => bucket.Name ?? "");
  } finally {
    s3.destroy();
  }
}

const hasAwsCli = spawnSync("sh", ["-c", "command -v aws"]).status === 0;

/** Seeds the choice of the port block (TEST_SEED replays it). */
const seed = seedFromEnv(0x10ca1);

describe(`tessera local (seed ${seed})`, () => {
  let port: number;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    port = await freePortBlock(new Prng(seed));
    dataDir = join(scratch, "data");
    env = { TESSERA_DATA_DIR: dataDir, TESSERA_PORT: String(port) };
  });

  it("starts six nodes and a gateway, prints a working endpoint and aws command, and stops them all on SIGINT", async () => {
    const run = startLocal(env);
    try {
      const endpoint = await endpointOf(run);
      expect(endpoint).toBe(`http://127.0.0.1:${port}`);
      expect(run.output()).toContain("first run: cluster.json and cluster.secret written");
      expect(run.output()).toContain(`access key   ${DEV_ACCESS_KEY}`);
      const children = childrenOf(run.child.pid);
      expect(children.map((child) => /storage-node --id (n[0-9])|(gateway)/.exec(child.command)?.slice(1).find(Boolean)).sort()).toEqual(["gateway", "n1", "n2", "n3", "n4", "n5", "n6"]);
      expect(await bucketNames(endpoint)).toEqual([]);
      await createDemoBucket(run.output(), endpoint);
      expect(await bucketNames(endpoint)).toEqual(["demo"]);
      run.child.kill("SIGINT");
      expect(await exitWithin(run.child, LOCAL_STOP_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
      expect(run.output()).toContain("Stopped.");
      expect(children.map((child) => child.pid).filter(isAlive)).toEqual([]);
    } finally {
      run.child.kill("SIGKILL");
    }
  });

  it("reuses the map, the secret and the data on a restart, and stops on SIGTERM", async () => {
    const layout = localLayout(dataDir);
    const [map, secret] = await Promise.all([readFile(layout.mapFile, "utf8"), readFile(layout.secretFile, "utf8")]);
    expect((await stat(layout.secretFile)).mode & 0o777).toBe(0o600);
    const run = startLocal(env);
    try {
      const endpoint = await endpointOf(run);
      expect(run.output()).not.toContain("first run");
      expect(await bucketNames(endpoint)).toEqual(["demo"]);
      expect([await readFile(layout.mapFile, "utf8"), await readFile(layout.secretFile, "utf8")]).toEqual([map, secret]);
      expect(readdirSync(layout.logsDir)).toContain("n1.log.1");
      run.child.kill("SIGTERM");
      expect(await exitWithin(run.child, LOCAL_STOP_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
    } finally {
      run.child.kill("SIGKILL");
    }
  });

  it("names a node that dies, stops the rest and exits 1", async () => {
    const run = startLocal(env);
    try {
      await endpointOf(run);
      const children = childrenOf(run.child.pid);
      const victim = children.find((child) => child.command.includes("--id n4 "));
      expect(victim).toBeDefined();
      process.kill(victim?.pid ?? 0, "SIGKILL");
      expect(await exitWithin(run.child, LOCAL_STOP_TIMEOUT_MS)).toEqual({ code: 1, signal: null });
      expect(run.output()).toMatch(/the storage node n4 \(pid [0-9]+\) exited unexpectedly \(signal SIGKILL\); stopping everything/);
      expect(run.output()).toContain("n4.log");
      expect(children.map((child) => child.pid).filter(isAlive)).toEqual([]);
    } finally {
      run.child.kill("SIGKILL");
    }
  });

  it("leaves no orphans when the supervisor itself is SIGKILLed: each child stops itself", async () => {
    const run = startLocal(env);
    try {
      await endpointOf(run);
      const pids = childrenOf(run.child.pid).map((child) => child.pid);
      expect(pids).toHaveLength(NODES + 1);
      run.child.kill("SIGKILL");
      await run.child.exited;
      const deadline = Date.now() + ORPHAN_EXIT_TIMEOUT_MS;
      while (pids.some(isAlive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(pids.filter(isAlive)).toEqual([]);
    } finally {
      run.child.kill("SIGKILL");
    }
  });

  it("refuses to start when a port is taken, naming the port and its process", async () => {
    const taken = port + NODE_PORT_OFFSET + 3;
    const squatter = await listen(taken);
    expect(squatter).toBeDefined();
    try {
      const result = await runTessera(["local"], env);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`port ${taken} for the storage node n3 is not free on 127.0.0.1: EADDRINUSE`);
    } finally {
      if (squatter !== undefined) await close(squatter);
    }
  });

  it("exits 2 naming a bad TESSERA_PORT, a port range past 65535, or bad credentials", async () => {
    const cases: Array<[NodeJS.ProcessEnv, string]> = [
      [{ TESSERA_PORT: "nine" }, "TESSERA_PORT: 'nine' is not a port number (1..65535)"],
      [{ TESSERA_PORT: "65500" }, "gateway port 65500: node 6 would need port 65606, over 65535"],
      [{ TESSERA_SECRET_KEY: "short", TESSERA_ACCESS_KEY: "my-key" }, "TESSERA_SECRET_KEY: must be at least 8 characters, got 5"],
      [{ TESSERA_ACCESS_KEY: "my-key" }, "TESSERA_ACCESS_KEY: an access key needs its secret key"],
      [{ TESSERA_LOG_LEVEL: "warn" }, "TESSERA_LOG_LEVEL: tessera local needs info, debug, trace"],
    ];
    const results = await Promise.all(cases.map(([extra]) => runTessera(["local"], { TESSERA_DATA_DIR: join(scratch, "bad"), ...extra })));
    results.forEach((result, index) => {
      expect({ code: result.code, stderr: result.stderr }).toMatchObject({ code: 2, stderr: expect.stringContaining(cases[index]?.[1] ?? "?") });
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });
  });
});

/** Runs the printed aws command exactly as printed when the aws CLI is installed; else the SDK does it. */
async function createDemoBucket(output: string, endpoint: string): Promise<void> {
  const printed = output.split("\n").map((line) => line.trim()).find((line) => line.startsWith("AWS_ACCESS_KEY_ID="));
  expect(printed).toBe(`AWS_ACCESS_KEY_ID=${DEV_ACCESS_KEY} AWS_SECRET_ACCESS_KEY=${DEV_SECRET_KEY} AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url ${endpoint} s3 mb s3://demo`);
  if (hasAwsCli) {
    const result = spawnSync("sh", ["-c", printed ?? ""], { encoding: "utf8" });
    expect({ status: result.status, stdout: result.stdout, stderr: result.stderr }).toMatchObject({ status: 0, stdout: "make_bucket: demo\n" });
    return;
  }
  const s3 = s3Client(endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: "demo" }));
  s3.destroy();
}

describe("tessera local data directory", () => {
  it("moves the node URLs with the gateway port and raises the epoch, keeping ids", async () => {
    const layout = localLayout(join(scratch, "moving"));
    await mkdir(layout.logsDir, { recursive: true });
    const first = await prepareMap(layout, 9000);
    expect(first).toMatchObject({ created: true, moved: false });
    expect(first.map.nodes.map((node) => node.url)).toEqual([9101, 9102, 9103, 9104, 9105, 9106].map((each) => `http://127.0.0.1:${each}`));
    expect(await prepareMap(layout, 9000)).toMatchObject({ created: false, moved: false });
    const moved = await prepareMap(layout, 20000);
    expect(moved).toMatchObject({ created: false, moved: true });
    expect(moved.map.epoch).toBe(first.map.epoch + 1);
    expect(moved.map.nodes.map((node) => [node.id, node.url])).toEqual(first.map.nodes.map((node, index) => [node.id, `http://127.0.0.1:${20101 + index}`]));
    expect(JSON.parse(await readFile(layout.mapFile, "utf8"))).toMatchObject({ epoch: 2 });
  });
});
