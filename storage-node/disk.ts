/**
 * One disk of a storage node: its directory layout, its state (ok / failed / full), its
 * space accounting, and the translation of file-system errors into operating errors.
 *
 *   <root>/tessera-disk.json   marker: which disk this directory is (refuses a swapped path)
 *   <root>/shards/             committed shard files (shard-files.ts)
 *   <root>/tmp/                shard uploads in progress; emptied at start-up
 *   <root>/records/            LMDB environment (lmdb-store.ts)
 *
 * A disk whose directory vanishes, turns read-only or returns I/O errors is marked failed
 * with a reason and takes no more requests: the node reports it and serves its other disks.
 * A failed disk stays failed until the node restarts (an operator replaces or fixes it).
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { assert } from "../core/assert.js";
import { TesseraError } from "../core/errors.js";
import type { DiskState } from "../core/storage-api.js";
import { probeDirectIo, type DirectIoMode } from "./direct-io.js";

const MiB = 1024 * 1024;

/**
 * Space kept free on a disk without a configured capacity: room for LMDB to grow, for temp
 * files of writes already admitted, and for the file system's own metadata. A shard that
 * would leave less is refused up front, so a full disk rarely sees a real ENOSPC mid-write.
 */
export const DISK_FREE_BYTES_MIN = 64 * MiB;
/**
 * How long a successful check of the disk marker (requireWritable) is believed before writes
 * check again. Cost of a stale answer: for up to this long after a disk's directory vanishes
 * (an unmount, a removed directory) record writes still land in LMDB's already-open, now
 * unlinked files and are acknowledged, so an object can be acknowledged with one live record
 * fewer than its quorum counted; the next check marks the disk failed, the gateway stops
 * using it and the healer rebuilds what it held (a shard write in that window fails on its
 * own: its temp file's directory is gone, and that error marks the disk failed at once).
 * What it saves: one fs.stat per record batch, 10–13% of a node's JS self time in the issue 7
 * profile of 4 KiB PUTs ×16 on this 2-core VM (a thread-pool round trip under contention).
 * MinIO likewise checks its disk id periodically rather than per write. The health probe
 * (disk.probe) always checks, whatever this says.
 */
export const DISK_WRITABLE_CHECK_TTL_MS = 1_000;
const MARKER_FILE = "tessera-disk.json";
const MARKER_FORMAT = 1;

/** File-system operations the fault-injection hook can fail (tests only). */
export type DiskOperation =
  | "open-write"
  | "write"
  | "fsync"
  | "rename"
  | "mkdir"
  | "open-read"
  | "read"
  | "unlink"
  | "record-write"
  | "record-read"
  | "probe";

/**
 * Test hook: called before each file-system operation of a disk; an error it returns is
 * thrown instead of doing the operation, as if the kernel had returned it.
 */
export type DiskFaultHook = (fault: { readonly diskId: string; readonly operation: DiskOperation; readonly path: string }) => Error | undefined;

/** Errors that mean the disk itself is broken, not the request. */
const FAILED_CODES = new Set(["EIO", "EROFS", "EACCES", "EPERM", "ENXIO", "ENODEV", "ESTALE", "EUCLEAN"]);
const FULL_CODES = new Set(["ENOSPC", "EDQUOT"]);
const MISSING_CODES = new Set(["ENOENT", "ENOTDIR"]);
/** LMDB reports some errno values only in its message. */
const MESSAGE_CODES: readonly [RegExp, string][] = [
  [/no space left/i, "ENOSPC"],
  [/read-only file system/i, "EROFS"],
  [/input\/output error/i, "EIO"],
  [/permission denied/i, "EACCES"],
  [/MDB_PANIC|MDB_CORRUPTED/, "EIO"],
];

export function errnoCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === "string" && code.startsWith("E")) return code;
  const message = (error as Error).message;
  if (typeof message !== "string") return undefined;
  return MESSAGE_CODES.find(([pattern]) => pattern.test(message))?.[1];
}

export function isMissing(error: unknown): boolean {
  const code = errnoCode(error);
  return code !== undefined && MISSING_CODES.has(code);
}

export interface DiskOptions {
  readonly id: string;
  readonly root: string;
  /** Configured capacity for shard bytes (tests); without it, free space comes from statfs. */
  readonly capacityBytes?: number;
  readonly logger: Logger;
  readonly faultInjection?: DiskFaultHook;
  /** Monotonic milliseconds (tests inject a clock); the marker check's TTL runs on it. */
  readonly now?: () => number;
  /**
   * Shard files with O_DIRECT (direct-io.ts): "auto" (the default) where a probe at start-up
   * finds the file system takes it, "off" never (the page cache is used, as any file).
   */
  readonly directIo?: DirectIoMode;
}

export interface DiskSpace {
  readonly freeBytes: number;
  readonly usedBytes: number;
}

export class Disk {
  readonly id: string;
  readonly root: string;
  readonly shardsDir: string;
  readonly tmpDir: string;
  readonly recordsDir: string;
  readonly #markerPath: string;
  readonly #capacityBytes: number | undefined;
  readonly #logger: Logger;
  readonly #faults: DiskFaultHook | undefined;
  readonly #now: () => number;
  #failedReason: string | undefined;
  /** The marker check in flight, which writes that start meanwhile share (requireWritable). */
  #writableCheck: Promise<unknown> | undefined;
  /** Until then (#now), the last successful marker check vouches for writes. */
  #writableUntilMs = Number.NEGATIVE_INFINITY;
  #fullReason: string | undefined;
  #reservedBytes = 0;
  #shardBytes = 0;
  #shardCount = 0;
  readonly #directIoMode: DirectIoMode;
  #directIo = false;

  constructor(options: DiskOptions) {
    this.id = options.id;
    this.root = path.resolve(options.root);
    this.shardsDir = path.join(this.root, "shards");
    this.tmpDir = path.join(this.root, "tmp");
    this.recordsDir = path.join(this.root, "records");
    this.#markerPath = path.join(this.root, MARKER_FILE);
    this.#capacityBytes = options.capacityBytes;
    this.#logger = options.logger.child({ diskId: this.id, path: this.root });
    this.#faults = options.faultInjection;
    this.#now = options.now ?? (() => performance.now());
    this.#directIoMode = options.directIo ?? "auto";
  }

  /** Whether shard files on this disk are written and read with O_DIRECT (known after initialize). */
  get directIo(): boolean {
    return this.#directIo;
  }

  get state(): DiskState {
    if (this.#failedReason !== undefined) return "failed";
    return this.#fullReason !== undefined ? "full" : "ok";
  }

  get reason(): string | undefined {
    return this.#failedReason ?? this.#fullReason;
  }

  get shardCount(): number {
    return this.#shardCount;
  }

  /**
   * Prepares the directory: checks or writes the marker, creates the layout, empties tmp/.
   * Never throws for a broken disk: it is marked failed and the node serves the others.
   */
  async initialize(): Promise<void> {
    try {
      await fs.mkdir(this.root, { recursive: true });
      await this.#checkMarker();
      for (const dir of [this.shardsDir, this.tmpDir, this.recordsDir]) await fs.mkdir(dir, { recursive: true });
      await this.#cleanTemp();
      await this.#chooseDirectIo();
    } catch (error) {
      if (error instanceof TesseraError && error.code === "ERR_INVALID_ARGUMENT") throw error;
      this.markFailed(`cannot initialize: ${describe(error)}`);
    }
  }

  async #checkMarker(): Promise<void> {
    let text: string | undefined;
    try {
      text = await fs.readFile(this.#markerPath, "utf8");
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
    if (text !== undefined) {
      const marker = JSON.parse(text) as { diskId?: unknown };
      if (marker.diskId !== this.id) {
        throw new TesseraError("ERR_INVALID_ARGUMENT", `disks: ${this.root} belongs to disk ${JSON.stringify(marker.diskId)}, not ${JSON.stringify(this.id)}`, { diskId: this.id });
      }
      return;
    }
    // A marker temp file left by a crash during a first start does not make the disk foreign.
    const entries = (await fs.readdir(this.root)).filter((name) => name !== "lost+found" && !name.startsWith(MARKER_FILE));
    if (entries.length > 0) {
      throw new Error(`${this.root} holds other files and no ${MARKER_FILE}: not a Tessera disk (or its marker was lost)`);
    }
    await writeFileDurably(this.#markerPath, JSON.stringify({ format: MARKER_FORMAT, diskId: this.id }) + "\n");
  }

  async #chooseDirectIo(): Promise<void> {
    if (this.#directIoMode === "off") {
      this.#logger.info({ directIo: false }, "shard files use the page cache (direct I/O is off)");
      return;
    }
    const probe = await probeDirectIo(this.tmpDir);
    this.#directIo = probe.supported;
    if (probe.supported) this.#logger.info({ directIo: true }, "shard files use direct I/O (O_DIRECT)");
    else this.#logger.info({ directIo: false, reason: probe.reason }, "shard files use the page cache: direct I/O is not available here");
  }

  async #cleanTemp(): Promise<void> {
    let removed = 0;
    for (const name of await fs.readdir(this.tmpDir)) {
      await fs.rm(path.join(this.tmpDir, name), { force: true, recursive: true });
      removed += 1;
    }
    if (removed > 0) this.#logger.info({ removed }, "removed temporary files of interrupted writes");
  }

  /**
   * Counts committed shards and their bytes: one readdir per directory, one stat per shard.
   * Entries that are not of the layout (a stray file, say) are skipped, not fatal.
   */
  async scanShards(): Promise<void> {
    if (this.#failedReason !== undefined) return;
    let count = 0;
    let bytes = 0;
    const directories = async (dir: string): Promise<string[]> =>
      (await fs.readdir(dir, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => path.join(dir, entry.name));
    try {
      for (const prefixDir of await directories(this.shardsDir)) {
        for (const objectDir of await directories(prefixDir)) {
          for (const entry of await fs.readdir(objectDir, { withFileTypes: true })) {
            if (!entry.isFile()) continue;
            bytes += (await fs.stat(path.join(objectDir, entry.name))).size;
            count += 1;
          }
        }
      }
    } catch (error) {
      this.markFailed(`cannot scan shards: ${describe(error)}`);
      return;
    }
    this.#shardCount = count;
    this.#shardBytes = bytes;
  }

  markFailed(reason: string): void {
    if (this.#failedReason !== undefined) return;
    this.#failedReason = reason;
    this.#logger.error({ reason }, "disk failed: it takes no more requests until the node restarts");
  }

  markFull(reason: string): void {
    if (this.#fullReason === undefined) this.#logger.warn({ reason }, "disk full");
    this.#fullReason = reason;
  }

  /** Throws ERR_DISK_FAILED if the disk is failed. */
  requireUsable(): void {
    if (this.#failedReason !== undefined) {
      throw new TesseraError("ERR_DISK_FAILED", `disk ${this.id} is failed: ${this.#failedReason}`, { diskId: this.id, reason: this.#failedReason });
    }
  }

  /**
   * Before a write: a vanished directory is detected here, since LMDB would otherwise write
   * on happily into its already-open (now unlinked) files. A successful check of the marker
   * is believed for DISK_WRITABLE_CHECK_TTL_MS (what that costs: see there), measured from
   * the check's start; writes that start while a check is in flight share it.
   */
  async requireWritable(): Promise<void> {
    this.requireUsable();
    if (this.#now() < this.#writableUntilMs) return;
    let check = this.#writableCheck;
    if (check === undefined) {
      const startedMs = this.#now();
      check = this.io("probe", this.#markerPath, () => fs.stat(this.#markerPath))
        .then(() => {
          if (this.#failedReason === undefined) this.#writableUntilMs = startedMs + DISK_WRITABLE_CHECK_TTL_MS;
        })
        .finally(() => {
          if (this.#writableCheck === check) this.#writableCheck = undefined;
        });
      this.#writableCheck = check;
    }
    await check;
    this.requireUsable();
  }

  /** Checks the disk is still there (for health); marks it failed if not. */
  async probe(): Promise<void> {
    if (this.#failedReason !== undefined) return;
    try {
      await this.io("probe", this.#markerPath, () => fs.stat(this.#markerPath));
    } catch {
      // io() marked the disk failed if the error meant that.
    }
    // With statfs the truth is at hand: full or not follows the free space, both ways (space
    // freed by an operator counts). A configured capacity changes only through our writes.
    if (this.#capacityBytes === undefined && this.#failedReason === undefined) {
      const space = await this.space();
      if (space.freeBytes < DISK_FREE_BYTES_MIN) this.markFull(`less than ${DISK_FREE_BYTES_MIN} bytes free`);
      else this.#fullReason = undefined;
    }
  }

  /**
   * Runs one file-system operation of this disk: first the fault hook (tests), then the
   * operation; errors that mean a broken or full disk are translated and change the state.
   * A missing file on a healthy disk is rethrown as is (the caller decides: not found).
   */
  async io<T>(operation: DiskOperation, target: string, run: () => Promise<T>): Promise<T> {
    try {
      const injected = this.#faults?.({ diskId: this.id, operation, path: target });
      if (injected !== undefined) throw injected;
      return await run();
    } catch (error) {
      throw await this.translate(error, operation);
    }
  }

  async translate(error: unknown, operation: string): Promise<unknown> {
    if (error instanceof TesseraError) return error;
    const code = errnoCode(error);
    if (code === undefined) return error;
    if (FULL_CODES.has(code)) {
      this.markFull(`${code} during ${operation}`);
      return new TesseraError("ERR_INSUFFICIENT_STORAGE", `disk ${this.id} is full (${code} during ${operation}); nothing was committed`, { diskId: this.id }, { cause: error });
    }
    if (FAILED_CODES.has(code)) {
      this.markFailed(`${code} during ${operation}: ${describe(error)}`);
      return new TesseraError("ERR_DISK_FAILED", `disk ${this.id} failed: ${code} during ${operation}`, { diskId: this.id }, { cause: error });
    }
    if (MISSING_CODES.has(code) && (await this.#markerMissing())) {
      this.markFailed("its directory vanished");
      return new TesseraError("ERR_DISK_FAILED", `disk ${this.id} failed: its directory vanished`, { diskId: this.id }, { cause: error });
    }
    return error;
  }

  async #markerMissing(): Promise<boolean> {
    try {
      await fs.stat(this.#markerPath);
      return false;
    } catch (error) {
      return isMissing(error);
    }
  }

  async space(): Promise<DiskSpace> {
    if (this.#capacityBytes !== undefined) {
      return { freeBytes: Math.max(0, this.#capacityBytes - this.#shardBytes - this.#reservedBytes), usedBytes: this.#shardBytes };
    }
    try {
      const stats = await fs.statfs(this.root);
      return { freeBytes: Math.max(0, stats.bavail * stats.bsize - this.#reservedBytes), usedBytes: (stats.blocks - stats.bfree) * stats.bsize };
    } catch {
      return { freeBytes: 0, usedBytes: 0 };
    }
  }

  /**
   * Admits a write of `bytes`: refused with ERR_INSUFFICIENT_STORAGE (nothing touched) when
   * it would not fit. Returns the release function, to call once the write ends either way.
   */
  async reserve(bytes: number): Promise<() => void> {
    const reservedBefore = this.#reservedBytes;
    const space = await this.space();
    // Writes admitted while space() was awaited are not in its figure: count them here.
    const freeBytes = Math.max(0, space.freeBytes - (this.#reservedBytes - reservedBefore));
    const keep = this.#capacityBytes === undefined ? DISK_FREE_BYTES_MIN : 0;
    if (bytes + keep > freeBytes) {
      this.markFull(`a ${bytes}-byte shard did not fit in ${freeBytes} free bytes`);
      throw new TesseraError("ERR_INSUFFICIENT_STORAGE", `disk ${this.id} has no room for ${bytes} bytes (${freeBytes} free); nothing was committed`, { diskId: this.id, freeBytes });
    }
    this.#reservedBytes += bytes;
    let released = false;
    return () => {
      assert(!released, "a reservation is released once");
      released = true;
      this.#reservedBytes -= bytes;
    };
  }

  noteShardStored(bytes: number, replacedBytes: number | undefined): void {
    this.#shardBytes += bytes - (replacedBytes ?? 0);
    if (replacedBytes === undefined) this.#shardCount += 1;
    this.#fullReason = undefined;
  }

  noteShardRemoved(bytes: number): void {
    this.#shardBytes -= bytes;
    this.#shardCount -= 1;
    assert(this.#shardCount >= 0, "shard count never goes negative");
    this.#fullReason = undefined;
  }

  /** A fresh temp-file path in this disk's tmp/ (same file system as shards/, so rename is atomic). */
  tempPath(): string {
    return path.join(this.tmpDir, `${randomBytes(16).toString("hex")}.tmp`);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Writes a small file atomically: temp file, fsync, rename, fsync of the directory. */
async function writeFileDurably(target: string, text: string): Promise<void> {
  const temp = `${target}.${randomBytes(8).toString("hex")}.tmp`;
  const handle = await fs.open(temp, "wx");
  try {
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, target);
  await syncDirectory(path.dirname(target));
}

/** fsync of a directory, so a rename or new entry in it survives a power loss. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
