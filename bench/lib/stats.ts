/** Percentiles and small number helpers for the bench. */

/** Nearest-rank percentile of `values` (need not be sorted); NaN when empty. */
export function percentile(values: ArrayLike<number>, p: number): number {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  return percentileSorted(sorted, p);
}

export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n: sorted.length,
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes of this machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** The millisecond part of a Redis stream id (`1700000000000-3` → 1700000000000): when Redis added it. */
export function idMs(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

export function round(value: number, digits = 1): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
