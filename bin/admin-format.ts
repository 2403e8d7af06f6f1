/**
 * Text renderings of the admin API's answers for `tessera heal status` and `tessera cluster
 * status`: a progress bar with the figures an operator watches during a rebuild, and a table
 * of nodes and disks. Pure functions of the status documents (tested on their own).
 */
import type { ClusterStatus } from "../gateway/healer/cluster-status.js";
import type { HealerStatus } from "../gateway/healer/status.js";

/** Characters of the progress bar. */
const BAR_WIDTH = 40;

export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = whole % 60;
  return hours > 0 ? `${hours}h${String(minutes).padStart(2, "0")}m` : minutes > 0 ? `${minutes}m${String(rest).padStart(2, "0")}s` : `${rest}s`;
}

function ago(now: number, at: number | undefined): string {
  return at === undefined ? "never" : `${formatDuration((now - at) / 1000)} ago`;
}

const count = (value: number): string => value.toLocaleString("en-US");

export function progressBar(fraction: number, width = BAR_WIDTH): string {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(clamped * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${(clamped * 100).toFixed(0).padStart(3)}%`;
}

/** Work done over work done plus left, in shard bytes (or objects when no bytes are known). */
function completion(status: HealerStatus): number {
  const written = status.totals.bytesWritten;
  if (status.bytesLeft > 0 || written > 0) return written / (written + status.bytesLeft);
  const queued = status.queue.length + status.queue.inFlight;
  const done = status.totals.objectsRepaired + status.totals.objectsHealthy;
  return queued === 0 ? 1 : done / (done + queued);
}

export function renderHealStatus(status: HealerStatus, m: number = status.ec.m): string {
  const { totals } = status;
  const job = status.job;
  const doing = job === undefined ? "" : ` (${job.kind} scan, pass ${job.pass}/${job.passes}${job.resumed ? ", resumed" : ""})`;
  const lines = [
    `Tessera healer  map epoch ${status.epoch}  ${status.ec.k}+${status.ec.m}  ${status.state}${doing}  out: ${status.outDisks.length === 0 ? "none" : status.outDisks.join(", ")}`,
    `  ${progressBar(completion(status))}  rebuild ${formatBytes(status.rebuildBytesPerSecond)}/s  ETA ${status.etaSeconds === undefined ? (status.bytesLeft === 0 ? "-" : "measuring") : formatDuration(status.etaSeconds)}`,
    `  scanned ${count(totals.objectsScanned)} objects (${formatBytes(totals.bytesScanned)})  queued ${count(totals.objectsQueued)}  repaired ${count(totals.objectsRepaired)}  failed ${count(totals.objectsFailed)}  degraded ${count(totals.objectsDegraded)}`,
    `  at risk: ${atRiskLine(status.atRisk, m)}  waiting: ${count(status.queue.length)} queued, ${count(status.queue.inFlight)} in flight`,
    `  shards: rebuilt ${count(totals.shardsRebuilt)}  moved ${count(totals.shardsCopied)}  reused ${count(totals.shardsReused)}  corrupt found ${count(totals.corruptFound)}  garbage removed ${count(totals.garbageRemoved)}`,
    `  written ${formatBytes(totals.bytesWritten)}  left ${formatBytes(status.bytesLeft)}  read ${formatBytes(totals.bytesRead)}  scrubbed ${count(totals.objectsScrubbed)} objects (${formatBytes(totals.bytesScrubbed)})`,
    `  throttle: ${status.throttle.concurrency} objects at once, bandwidth ${status.throttle.bandwidthBytesPerSecond === 0 ? "unlimited" : `${formatBytes(status.throttle.bandwidthBytesPerSecond)}/s`}`,
    `  last completed: ${(["failure", "rebalance", "scan", "scrub"] as const).map((kind) => `${kind} ${ago(status.now, status.lastCompleted[kind])}`).join(", ")}`,
  ];
  for (const failure of status.recentFailures.slice(-3)) lines.push(`  ! ${failure.bucket}/${failure.key}: ${failure.status}: ${failure.detail.slice(0, 160)}`);
  return `${lines.join("\n")}\n`;
}

function atRiskLine(atRisk: Readonly<Record<string, number>>, m: number): string {
  const levels = Object.entries(atRisk).filter(([spare]) => Number(spare) < m);
  if (levels.length === 0) return "none";
  return levels.map(([spare, objects]) => (Number(spare) < 0 ? `${count(objects)} unreadable` : `${count(objects)} with ${spare} spare`)).join(", ");
}

/** Stripe sizes are powers of two in practice: 64 KiB, 1 MiB. */
function stripeSize(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${bytes / (1024 * 1024)} MiB` : `${bytes / 1024} KiB`;
}

function row(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join("  ").trimEnd();
}

export function renderClusterStatus(status: ClusterStatus, now = Date.now()): string {
  const { totals } = status;
  const header = [
    `cluster map epoch ${status.epoch}  ${status.ec.k}+${status.ec.m}, ${stripeSize(status.ec.blockSize)} stripes${status.mapFile === undefined ? "" : `  (${status.mapFile})`}`,
    `nodes ${totals.nodes} (${totals.nodesUp} up)  disks ${totals.disks} (${totals.disksOut} out)  used ${formatBytes(totals.usedBytes)}  free ${formatBytes(totals.freeBytes)}`,
    "",
  ];
  const cells = [["NODE", "ROLE", "STATE", "SINCE", "ZONE", "URL", "DISK", "WEIGHT", "DISK STATE", "USED", "FREE", "SHARDS", "RECORDS", ""]];
  for (const node of status.nodes) {
    const disks = node.disks.length === 0 ? [undefined] : node.disks;
    disks.forEach((disk, index) => {
      const first = index === 0;
      cells.push([
        first ? node.id : "",
        first ? node.role : "",
        first ? node.state : "",
        first ? ago(now, node.since) : "",
        first ? (node.zone ?? "-") : "",
        first ? (node.url ?? "-") : "",
        disk?.id ?? "-",
        disk?.weight === undefined ? "-" : String(disk.weight),
        disk === undefined ? "-" : `${disk.state}${disk.reason === undefined ? "" : ` (${disk.reason.slice(0, 40)})`}`,
        disk === undefined ? "-" : formatBytes(disk.usedBytes),
        disk === undefined ? "-" : formatBytes(disk.freeBytes),
        disk === undefined ? "-" : count(disk.shardCount),
        disk === undefined ? "-" : count(disk.recordCount),
        disk?.out === true ? "OUT" : "",
      ]);
    });
  }
  const widths = (cells[0] as string[]).map((_, column) => Math.max(...cells.map((line) => (line[column] ?? "").length)));
  return `${header.join("\n")}${cells.map((line) => row(line, widths)).join("\n")}\n`;
}
