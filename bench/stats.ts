/** Summaries: min / median / max of a figure over runs, and latency percentiles within a run. */
import { assert } from "../core/assert.js";

export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

export function spread(values: readonly number[]): Spread {
  assert(values.length > 0, "a spread of at least one value");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  return { min: sorted[0] as number, median, max: sorted[sorted.length - 1] as number };
}

/** The nearest-rank percentile `p` (0..100) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  assert(values.length > 0 && p >= 0 && p <= 100, "a percentile of at least one value");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** A spread as "median (min–max)" with `digits` decimals. */
export function formatSpread(value: Spread | undefined, digits = 0): string {
  if (value === undefined) return "–";
  const show = (n: number): string => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `${show(value.median)} (${show(value.min)}–${show(value.max)})`;
}
