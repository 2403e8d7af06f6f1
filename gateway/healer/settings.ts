/**
 * The healer's settings: the defaults of limits.ts, overridden by TESSERA_HEAL_* environment
 * variables of the gateway process (validated here: a bad value is a UsageError naming the
 * variable, and the gateway exits 2). Concurrency and bandwidth can also change at run time
 * through the admin API.
 */
import { UsageError } from "../../core/settings.js";
import {
  CHECKPOINT_INTERVAL_MS_DEFAULT,
  DOWN_AFTER_MS_DEFAULT,
  PARTIAL_VERSION_GRACE_MS_DEFAULT,
  PROBE_INTERVAL_MS_DEFAULT,
  PROBE_TIMEOUT_MS_DEFAULT,
  REBUILD_BANDWIDTH_BYTES_PER_SECOND_DEFAULT,
  REBUILD_CONCURRENCY_DEFAULT,
  REBUILD_CONCURRENCY_MAX,
  REPAIR_LIST_POLL_INTERVAL_MS_DEFAULT,
  RETRY_AFTER_MS_DEFAULT,
  SCAN_INTERVAL_MS_DEFAULT,
  SCRUB_PERIOD_MS_DEFAULT,
  SUSPECT_AFTER_MS_DEFAULT,
} from "./limits.js";

export interface HealerSettings {
  /** False: no healer in this gateway (run one healer per cluster; see README). */
  readonly enabled: boolean;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly suspectAfterMs: number;
  readonly downAfterMs: number;
  readonly scanIntervalMs: number;
  readonly scrubPeriodMs: number;
  readonly repairListPollIntervalMs: number;
  readonly partialVersionGraceMs: number;
  readonly retryAfterMs: number;
  readonly checkpointIntervalMs: number;
  readonly concurrency: number;
  /** 0: unlimited. */
  readonly bandwidthBytesPerSecond: number;
}

export const HEALER_SETTINGS_DEFAULT: HealerSettings = {
  enabled: true,
  probeIntervalMs: PROBE_INTERVAL_MS_DEFAULT,
  probeTimeoutMs: PROBE_TIMEOUT_MS_DEFAULT,
  suspectAfterMs: SUSPECT_AFTER_MS_DEFAULT,
  downAfterMs: DOWN_AFTER_MS_DEFAULT,
  scanIntervalMs: SCAN_INTERVAL_MS_DEFAULT,
  scrubPeriodMs: SCRUB_PERIOD_MS_DEFAULT,
  repairListPollIntervalMs: REPAIR_LIST_POLL_INTERVAL_MS_DEFAULT,
  partialVersionGraceMs: PARTIAL_VERSION_GRACE_MS_DEFAULT,
  retryAfterMs: RETRY_AFTER_MS_DEFAULT,
  checkpointIntervalMs: CHECKPOINT_INTERVAL_MS_DEFAULT,
  concurrency: REBUILD_CONCURRENCY_DEFAULT,
  bandwidthBytesPerSecond: REBUILD_BANDWIDTH_BYTES_PER_SECOND_DEFAULT,
};

/** Environment variable of each numeric setting: what the README documents. */
export const HEALER_VARIABLES: Readonly<Record<Exclude<keyof HealerSettings, "enabled">, string>> = {
  probeIntervalMs: "TESSERA_HEAL_PROBE_INTERVAL_MS",
  probeTimeoutMs: "TESSERA_HEAL_PROBE_TIMEOUT_MS",
  suspectAfterMs: "TESSERA_HEAL_SUSPECT_AFTER_MS",
  downAfterMs: "TESSERA_HEAL_DOWN_AFTER_MS",
  scanIntervalMs: "TESSERA_HEAL_SCAN_INTERVAL_MS",
  scrubPeriodMs: "TESSERA_HEAL_SCRUB_PERIOD_MS",
  repairListPollIntervalMs: "TESSERA_HEAL_REPAIR_POLL_MS",
  partialVersionGraceMs: "TESSERA_HEAL_PARTIAL_GRACE_MS",
  retryAfterMs: "TESSERA_HEAL_RETRY_MS",
  checkpointIntervalMs: "TESSERA_HEAL_CHECKPOINT_MS",
  concurrency: "TESSERA_HEAL_CONCURRENCY",
  bandwidthBytesPerSecond: "TESSERA_HEAL_BANDWIDTH",
};

const ENABLED_VARIABLE = "TESSERA_HEAL";
/** Byte sizes may carry a unit: "100MiB", "50MB", "0". */
const SIZE_PATTERN = /^([0-9]+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/;
const SIZE_UNITS: Readonly<Record<string, number>> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** "100MiB" -> 104857600; undefined when not a size. */
export function parseByteSize(text: string): number | undefined {
  const match = SIZE_PATTERN.exec(text.trim());
  if (match === null) return undefined;
  const bytes = Number(match[1]) * (SIZE_UNITS[match[2] ?? "B"] ?? 1);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const text = env[name];
  if (text === undefined || text === "") return undefined;
  const value = /^[0-9]+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new UsageError(`${name}: must be a whole number in ${min}..${max}, got '${text}'`);
  return value;
}

function byteRate(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === "") return undefined;
  const value = parseByteSize(text);
  if (value === undefined) throw new UsageError(`${name}: must be bytes per second, optionally with a unit (B, KB, MB, GB, KiB, MiB, GiB), got '${text}'`);
  return value;
}

function enabled(env: NodeJS.ProcessEnv): boolean {
  const text = env[ENABLED_VARIABLE];
  if (text === undefined || text === "" || text === "on") return true;
  if (text === "off") return false;
  throw new UsageError(`${ENABLED_VARIABLE}: must be 'on' or 'off', got '${text}'`);
}

/** Defaults overridden by the environment; checks the relations between timeouts. */
export function healerSettingsFromEnv(env: NodeJS.ProcessEnv, base: HealerSettings = HEALER_SETTINGS_DEFAULT): HealerSettings {
  const v = HEALER_VARIABLES;
  const settings: HealerSettings = {
    enabled: enabled(env),
    probeIntervalMs: wholeNumber(env, v.probeIntervalMs, 10) ?? base.probeIntervalMs,
    probeTimeoutMs: wholeNumber(env, v.probeTimeoutMs, 10) ?? base.probeTimeoutMs,
    suspectAfterMs: wholeNumber(env, v.suspectAfterMs, 10) ?? base.suspectAfterMs,
    downAfterMs: wholeNumber(env, v.downAfterMs, 10) ?? base.downAfterMs,
    scanIntervalMs: wholeNumber(env, v.scanIntervalMs, 100) ?? base.scanIntervalMs,
    scrubPeriodMs: wholeNumber(env, v.scrubPeriodMs, 100) ?? base.scrubPeriodMs,
    repairListPollIntervalMs: wholeNumber(env, v.repairListPollIntervalMs, 10) ?? base.repairListPollIntervalMs,
    partialVersionGraceMs: wholeNumber(env, v.partialVersionGraceMs, 0) ?? base.partialVersionGraceMs,
    retryAfterMs: wholeNumber(env, v.retryAfterMs, 10) ?? base.retryAfterMs,
    checkpointIntervalMs: wholeNumber(env, v.checkpointIntervalMs, 10) ?? base.checkpointIntervalMs,
    concurrency: wholeNumber(env, v.concurrency, 1, REBUILD_CONCURRENCY_MAX) ?? base.concurrency,
    bandwidthBytesPerSecond: byteRate(env, v.bandwidthBytesPerSecond) ?? base.bandwidthBytesPerSecond,
  };
  validateHealerSettings(settings);
  return settings;
}

export function validateHealerSettings(settings: HealerSettings): void {
  const v = HEALER_VARIABLES;
  if (settings.probeTimeoutMs > settings.probeIntervalMs) throw new UsageError(`${v.probeTimeoutMs}: must be at most ${v.probeIntervalMs} (${settings.probeIntervalMs})`);
  if (settings.suspectAfterMs <= settings.probeIntervalMs) throw new UsageError(`${v.suspectAfterMs}: must be above ${v.probeIntervalMs} (${settings.probeIntervalMs}), or one late probe makes a node suspect`);
  if (settings.downAfterMs < settings.suspectAfterMs) throw new UsageError(`${v.downAfterMs}: must be at least ${v.suspectAfterMs} (${settings.suspectAfterMs})`);
  if (settings.concurrency < 1 || settings.concurrency > REBUILD_CONCURRENCY_MAX) throw new UsageError(`${v.concurrency}: must be in 1..${REBUILD_CONCURRENCY_MAX}`);
  if (settings.bandwidthBytesPerSecond < 0) throw new UsageError(`${v.bandwidthBytesPerSecond}: must be >= 0`);
}
