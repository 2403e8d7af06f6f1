/**
 * The SVG chart of a run: throughput by object size at concurrency 4, PUT and GET side by
 * side, Tessera against its model ceiling and the s3rver baseline. A log scale, since 4 KiB
 * objects move about a thousandth of the bytes 64 MiB ones do. Plain SVG, no dependencies.
 */
import { bound, type ModelInputs } from "./model.js";
import { sizeName, type BenchResults } from "./report.js";

/** Geometry in SVG user units. */
const PANEL_WIDTH = 420;
const PANEL_HEIGHT = 300;
const MARGIN = { left: 60, top: 40, bottom: 50, right: 20 };
const BAR_WIDTH = 22;
const GROUP_GAP = 40;
/** The y axis spans these MB/s, one decade per gridline. */
const Y_MIN_MBPS = 0.1;
const Y_MAX_MBPS = 10_000;
const SERIES = [
  { name: "Tessera", color: "#2b6cb0" },
  { name: "ceiling (model)", color: "#a0aec0" },
  { name: "s3rver", color: "#dd6b20" },
] as const;
/** Concurrency the chart shows: the targets are stated at 4. */
const CHART_CONCURRENCY = 4;

function yOf(mbps: number): number {
  const clamped = Math.min(Y_MAX_MBPS, Math.max(Y_MIN_MBPS, mbps));
  const fraction = (Math.log10(clamped) - Math.log10(Y_MIN_MBPS)) / (Math.log10(Y_MAX_MBPS) - Math.log10(Y_MIN_MBPS));
  return MARGIN.top + PANEL_HEIGHT * (1 - fraction);
}

function panel(results: BenchResults, inputs: ModelInputs, operation: "PUT" | "GET", sizes: readonly number[], x0: number): string[] {
  const parts: string[] = [`<text x="${x0 + MARGIN.left + 10}" y="${MARGIN.top - 12}" font-weight="bold">${operation}, concurrency ${CHART_CONCURRENCY}</text>`];
  for (let decade = Math.log10(Y_MIN_MBPS); decade <= Math.log10(Y_MAX_MBPS); decade++) {
    const y = yOf(10 ** decade);
    parts.push(`<line x1="${x0 + MARGIN.left}" x2="${x0 + MARGIN.left + PANEL_WIDTH}" y1="${y}" y2="${y}" stroke="#e2e8f0"/>`);
    parts.push(`<text x="${x0 + MARGIN.left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${10 ** decade >= 1 ? (10 ** decade).toLocaleString("en-US") : (10 ** decade).toFixed(1)}</text>`);
  }
  const groupWidth = SERIES.length * BAR_WIDTH + GROUP_GAP;
  sizes.forEach((size, group) => {
    const tessera = results.cells.find((cell) => cell.target !== "s3rver" && cell.condition === "healthy" && cell.operation === operation && cell.size === size && cell.concurrency === CHART_CONCURRENCY);
    const baseline = results.cells.find((cell) => cell.target === "s3rver" && cell.condition === "healthy" && cell.operation === operation && cell.size === size && cell.concurrency === CHART_CONCURRENCY);
    const values = [tessera?.megabytesPerSecond?.median, bound(inputs, operation, size).megabytesPerSecond, baseline?.megabytesPerSecond?.median];
    const left = x0 + MARGIN.left + GROUP_GAP / 2 + group * groupWidth;
    values.forEach((value, series) => {
      if (value === undefined) return;
      const y = yOf(value);
      const x = left + series * BAR_WIDTH;
      parts.push(`<rect x="${x}" y="${y}" width="${BAR_WIDTH - 2}" height="${MARGIN.top + PANEL_HEIGHT - y}" fill="${SERIES[series]?.color}"><title>${SERIES[series]?.name}: ${value.toFixed(1)} MB/s</title></rect>`);
    });
    parts.push(`<text x="${left + (SERIES.length * BAR_WIDTH) / 2}" y="${MARGIN.top + PANEL_HEIGHT + 18}" text-anchor="middle" font-size="12">${sizeName(size)}</text>`);
  });
  parts.push(`<text x="${x0 + 14}" y="${MARGIN.top + PANEL_HEIGHT / 2}" transform="rotate(-90 ${x0 + 14} ${MARGIN.top + PANEL_HEIGHT / 2})" text-anchor="middle" font-size="12">MB/s (log)</text>`);
  return parts;
}

export function renderChart(results: BenchResults, inputs: ModelInputs, sizes: readonly number[]): string {
  const width = 2 * (MARGIN.left + PANEL_WIDTH + MARGIN.right);
  const height = MARGIN.top + PANEL_HEIGHT + MARGIN.bottom + 20;
  const legend = SERIES.map((series, index) => `<rect x="${MARGIN.left + index * 150}" y="${height - 22}" width="12" height="12" fill="${series.color}"/><text x="${MARGIN.left + index * 150 + 18}" y="${height - 12}" font-size="12">${series.name}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...panel(results, inputs, "PUT", sizes, 0),
    ...panel(results, inputs, "GET", sizes, width / 2),
    ...legend,
    `<text x="${width - 10}" y="${height - 12}" text-anchor="end" font-size="11" fill="#4a5568">${results.machine.cores} cores, ${results.startedAt.slice(0, 10)}${results.options.quick ? ", --quick" : ""}</text>`,
    "</svg>",
    "",
  ].join("\n");
}
