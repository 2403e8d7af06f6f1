/**
 * Direct I/O (O_DIRECT) for shard files: the bytes go between the node's buffer and the
 * device without a copy into the kernel's page cache.
 *
 * Why: on the 2-core VM of issue 7, a buffered write's copy into the page cache
 * (`copy_folio_from_iter_atomic`) was 45% of a storage node's CPU during 64 MiB PUTs, about
 * 2 CPU s per GB of shard with three writers at once against 0.1 with O_DIRECT (dd and a
 * Node script, 1 MiB writes, fsync per file); a cold buffered read cost the nodes about as
 * much again on the GETs that followed. A node fsyncs every shard before it acknowledges
 * it, so the page cache bought nothing on the write path. MinIO and Ceph's BlueStore write
 * their large data with O_DIRECT for the same reason.
 *
 * The rules O_DIRECT imposes: the buffer's address, the file offset and the length must
 * be multiples of the device's logical block size. DIRECT_IO_ALIGNMENT covers 512-byte and
 * 4 KiB devices. A write of a shard's last partial block is padded with zeros to a whole
 * block and the file is then truncated to its real length; a read of a range reads the
 * aligned blocks around it and hands out the part asked for.
 *
 * Not every file system takes O_DIRECT (some FUSE and network file systems, and tmpfs before
 * Linux 6.6, refuse it with EINVAL; macOS has no such flag): `probeDirectIo` tries it once
 * per disk at start-up, and a disk without it keeps the buffered path, correct everywhere.
 * `--direct-io off` keeps every disk of a node on the buffered path.
 */
import { constants as fsConstants, promises as fs } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { randomBytes } from "node:crypto";

/** "auto": O_DIRECT where the probe finds the file system takes it; "off": the page cache, always. */
export type DirectIoMode = "auto" | "off";
export const DIRECT_IO_MODES: readonly DirectIoMode[] = ["auto", "off"];

/** Alignment of buffers, offsets and lengths: a multiple of 512- and 4096-byte logical blocks. */
export const DIRECT_IO_ALIGNMENT = 4096;

/** Linux's O_DIRECT; undefined where the platform has none (then direct I/O is never used). */
const O_DIRECT: number | undefined = (fsConstants as { O_DIRECT?: number }).O_DIRECT;

/** The open(2) flags of a new shard temp file written with O_DIRECT (as "wx" otherwise). */
export const DIRECT_WRITE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | (O_DIRECT ?? 0);
/** The open(2) flags of a shard file read with O_DIRECT (as "r" otherwise). */
export const DIRECT_READ_FLAGS = fsConstants.O_RDONLY | (O_DIRECT ?? 0);

interface DirectIoAddon {
  getAlignedBuffer(size: number, alignment: number): Buffer;
}
// @ronomon/direct-io (native, N-API): posix_memalign'd Buffers, freed when collected. Loaded
// at the first buffer, so that reading a node's flags loads no native code.
let addon: DirectIoAddon | undefined;

export function alignDown(offset: number): number {
  return offset - (offset % DIRECT_IO_ALIGNMENT);
}

export function alignUp(length: number): number {
  return alignDown(length + DIRECT_IO_ALIGNMENT - 1);
}

/**
 * A Buffer of `bytes` rounded up to the alignment, starting at an aligned address (contents
 * unset). Its memory is not counted by V8 (the addon does not report it), so a GC is never
 * started on its account: callers keep such buffers in pools rather than allocate per use.
 */
export function alignedBuffer(bytes: number): Buffer {
  addon ??= createRequire(import.meta.url)("@ronomon/direct-io") as DirectIoAddon;
  return addon.getAlignedBuffer(alignUp(Math.max(1, bytes)), DIRECT_IO_ALIGNMENT);
}

export interface DirectIoProbe {
  readonly supported: boolean;
  /** Why not, when not: the platform, or the file system's answer. */
  readonly reason?: string;
}

/**
 * Whether files in `dir` can be written and read with O_DIRECT: one aligned block is written,
 * fsynced, read back and compared, and the probe file removed. EINVAL (the file system
 * refuses the flag) means no; any other error is the disk's own trouble and is thrown.
 */
export async function probeDirectIo(dir: string): Promise<DirectIoProbe> {
  if (O_DIRECT === undefined) return { supported: false, reason: `this platform (${process.platform}) has no O_DIRECT` };
  const file = path.join(dir, `direct-io-probe-${randomBytes(8).toString("hex")}.tmp`);
  const block = alignedBuffer(DIRECT_IO_ALIGNMENT);
  randomBytes(DIRECT_IO_ALIGNMENT).copy(block);
  try {
    const writer = await fs.open(file, DIRECT_WRITE_FLAGS, 0o600);
    try {
      await writer.write(block, 0, DIRECT_IO_ALIGNMENT, 0);
      await writer.sync();
    } finally {
      await writer.close();
    }
    const back = alignedBuffer(DIRECT_IO_ALIGNMENT);
    const reader = await fs.open(file, DIRECT_READ_FLAGS);
    try {
      const { bytesRead } = await reader.read(back, 0, DIRECT_IO_ALIGNMENT, 0);
      if (bytesRead !== DIRECT_IO_ALIGNMENT || !back.equals(block)) return { supported: false, reason: "a block written with O_DIRECT did not read back the same" };
    } finally {
      await reader.close();
    }
    return { supported: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EINVAL") return { supported: false, reason: "the file system refuses O_DIRECT (EINVAL)" };
    throw error;
  } finally {
    await fs.rm(file, { force: true });
  }
}
