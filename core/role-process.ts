/**
 * What every long-running `tessera` role does the same way as a process: pino logs on stdout
 * (JSON lines for machines and log files, pretty when stdout is a terminal), and a clean stop
 * on the first SIGTERM or SIGINT with a hard deadline, so a supervisor never waits on a hung
 * process. Roles log `{"msg":"listening","url":...,"port":...}` once serving; supervisors
 * (bin/local-cluster.ts) and tests wait for that line.
 */
import { setFlagsFromString } from "node:v8";
import pino, { type Logger } from "pino";
import PinoPretty from "pino-pretty";
import { UsageError, type LogLevel } from "./settings.js";

/**
 * What this process runs: "dist" (the JavaScript bin/build.js compiles, which bin/tessera.js
 * runs when it is a build of the current sources) or "sources" (the TypeScript through tsx:
 * about 40 MiB more memory per process). Each role's "listening" line says which.
 */
export const RUNS_FROM: "dist" | "sources" = import.meta.url.endsWith(".js") ? "dist" : "sources";

/**
 * How far V8 lets a role's old generation grow past what the last full collection kept, in
 * percent (V8's --heap-growing-percent: the limit is live × (1 + percent / 100)); each role
 * sets its own default (storage-node/main.ts, gateway/main.ts). 0 leaves V8's own rule.
 *
 * Why it matters here: every socket read and every HTTP body piece is a fresh ArrayBuffer, so
 * a role moving bytes allocates (and soon drops) hundreds of MB of them a second. Under V8's
 * own rule a storage node receiving 256 KiB shards (bench/node-batch.ts --shards) had its limit
 * set at 1.4-2.3 × a live heap of 18 MB, with 30-35 MB of ArrayBuffers outstanding at each
 * collection, and ran a full mark-compact every 24 MB received (46 per GB); at 300 percent it
 * ran 4-5 in the same run instead of 42-48, its scavenges freeing the buffers. Measured
 * effects: bench/README.md, "Fixes and their effect".
 */
export const HEAP_GROWING_PERCENT_ENV = "TESSERA_HEAP_GROWING_PERCENT";
/** Ten times live: past this a role's memory would follow its traffic, not its live data. */
export const HEAP_GROWING_PERCENT_MAX = 900;

/** The role's heap growing percent: TESSERA_HEAP_GROWING_PERCENT when set, else `roleDefault`. */
export function heapGrowingPercent(env: NodeJS.ProcessEnv, roleDefault: number): number {
  const text = env[HEAP_GROWING_PERCENT_ENV];
  if (text === undefined || text === "") return roleDefault;
  const value = Number(text);
  if (!/^[0-9]{1,4}$/.test(text) || value > HEAP_GROWING_PERCENT_MAX) {
    throw new UsageError(`${HEAP_GROWING_PERCENT_ENV}: '${text}' is not a whole number of percent in 0..${HEAP_GROWING_PERCENT_MAX} (0: V8's own rule)`);
  }
  return value;
}

/**
 * Applies it to this process's V8 (before the role allocates much; V8 reads it whenever it
 * sets the next limit, so it holds from the next collection on).
 */
export function applyHeapGrowingPercent(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/**
 * glibc malloc settings every role process is started with by `tessera local` and the test and
 * bench harnesses (bin/supervised-child.ts); a role started another way (systemd, a shell)
 * gets them from its own environment (README, "Configuration"). glibc reads them only
 * when the process starts, so a role cannot set them for itself; its "listening" line says
 * which are in effect (mallocSettings). A variable already in the environment wins.
 *
 * Why: Node allocates every socket read, stripe and reconstruct buffer with malloc. By default
 * glibc raises its mmap threshold to the size of the last large block freed (up to 32 MiB),
 * so after the first freed 1.5 MiB stripe buffer every later one is carved from the heap
 * between 64 KiB socket reads, and the pages freed around them are kept; and it gives each
 * thread that allocates an arena of its own (up to 8 per core). A fixed 128 KiB threshold
 * (which also stops the adjusting) returns each large buffer's pages to the system when it
 * is freed; two arenas bound what other threads hold. Measured over the Tessera half of the
 * full bench run (bench/README.md, "Fixes and their effect"): the gateway's peak while the
 * healer rebuilt an emptied node fell from 260-282 MiB (five runs) to 239-245 (five), its
 * peaks in the other phases by 0-17 MiB; its CPU seconds per GB stayed within the run-to-run
 * noise (PUT 1 MiB ×4 and ×16, two alternating pairs; PUT 4 KiB ×16 perhaps a few percent
 * slower, six pairs).
 */
export const ROLE_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072" };

/** `env` with ROLE_MALLOC_ENV's variables added where it does not set them itself. */
export function withRoleMallocEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...ROLE_MALLOC_ENV, ...env };
}

/** The ROLE_MALLOC_ENV variables set in `env` (those in effect, since glibc read them at start), for the "listening" line. */
export function mallocSettings(env: NodeJS.ProcessEnv): string {
  const set = Object.keys(ROLE_MALLOC_ENV).flatMap((name) => (env[name] === undefined ? [] : [`${name}=${env[name]}`]));
  return set.length === 0 ? "glibc defaults" : set.join(" ");
}

export function createRoleLogger(level: LogLevel, base: Record<string, string>): Logger {
  const options = { level, base, timestamp: pino.stdTimeFunctions.isoTime };
  // Synchronous writes: the last lines before a crash or process.exit are never lost.
  return process.stdout.isTTY ? pino(options, PinoPretty({ colorize: true })) : pino(options, pino.destination({ fd: 1, sync: true }));
}

/** Resolves on the first SIGTERM or SIGINT; a second one exits at once (status 1). */
export function waitForStopSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (received) {
        logger.warn({ signal }, "second signal: exiting without a clean shutdown");
        process.exit(1);
      }
      received = true;
      resolve(signal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/** Exits the process with status 1 if `disarm` is not called within `deadlineMs`. */
export function armShutdownDeadline(logger: Logger, deadlineMs: number): { disarm(): void } {
  const timer = setTimeout(() => {
    logger.fatal(`shutdown took over ${deadlineMs} ms; exiting now`);
    process.exit(1);
  }, deadlineMs);
  timer.unref();
  return { disarm: () => clearTimeout(timer) };
}
