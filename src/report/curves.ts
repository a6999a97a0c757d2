/**
 * Accuracy curves of an experiment: per-arm mean and spread over seeds on a common x grid, and the
 * compute at which one arm first reaches a given accuracy (the paper's compute-efficiency reading).
 */

export interface CurvePoint {
  step: number;
  /** cumulative FLOPs (student and teacher, forward and backward) at this evaluation */
  flops: number;
  /** cumulative wall seconds at this evaluation (evaluation time excluded) */
  seconds: number;
  /** test accuracy in [0, 1] */
  accuracy: number;
}

export interface ArmRun {
  arm: string;
  seed: number;
  points: CurvePoint[];
}

export interface Band {
  x: number[];
  mean: number[];
  min: number[];
  max: number[];
}

/** Linear interpolation of y(x) on sorted points; holds the ends flat. */
export function interpolate(xs: number[], ys: number[], x: number): number {
  if (xs.length === 0) return Number.NaN;
  if (x <= xs[0]!) return ys[0]!;
  for (let i = 1; i < xs.length; i++) {
    if (x <= xs[i]!) {
      const t = (x - xs[i - 1]!) / (xs[i]! - xs[i - 1]! || 1);
      return ys[i - 1]! + t * (ys[i]! - ys[i - 1]!);
    }
  }
  return ys[ys.length - 1]!;
}

/** Mean, min and max over the runs of one arm, on `n` x values up to the shortest run's end. */
export function band(runs: ArmRun[], axis: 'flops' | 'seconds', n = 40): Band {
  if (runs.length === 0) return { x: [], mean: [], min: [], max: [] };
  const end = Math.min(...runs.map((r) => r.points[r.points.length - 1]?.[axis] ?? 0));
  const xs = Array.from({ length: n }, (_, i) => (end * i) / (n - 1));
  const out: Band = { x: xs, mean: [], min: [], max: [] };
  for (const x of xs) {
    const ys = runs.map((r) => interpolate(r.points.map((p) => p[axis]), r.points.map((p) => p.accuracy), x));
    out.mean.push(ys.reduce((a, b) => a + b, 0) / ys.length);
    out.min.push(Math.min(...ys));
    out.max.push(Math.max(...ys));
  }
  return out;
}

/** The first x at which the band's mean reaches `target` (interpolated), or null. */
export function firstReach(b: Band, target: number): number | null {
  for (let i = 0; i < b.x.length; i++) {
    if (b.mean[i]! >= target) {
      if (i === 0) return b.x[0]!;
      const t = (target - b.mean[i - 1]!) / (b.mean[i]! - b.mean[i - 1]! || 1);
      return b.x[i - 1]! + t * (b.x[i]! - b.x[i - 1]!);
    }
  }
  return null;
}

export interface ArmSummary {
  arm: string;
  seeds: number;
  initialAccuracy: number;
  finalMean: number;
  finalStd: number;
  bestMean: number;
  /** FLOPs at which the arm's mean curve reaches its best */
  flopsAtBest: number;
  totalFlops: number;
  totalSeconds: number;
}

export function summarize(runs: ArmRun[]): ArmSummary[] {
  const arms = [...new Set(runs.map((r) => r.arm))];
  return arms.map((arm) => {
    const rs = runs.filter((r) => r.arm === arm);
    const finals = rs.map((r) => r.points[r.points.length - 1]?.accuracy ?? Number.NaN);
    const mean = finals.reduce((a, b) => a + b, 0) / finals.length;
    const std = Math.sqrt(finals.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, finals.length - 1));
    const b = band(rs, 'flops');
    let best = 0;
    for (let i = 1; i < b.mean.length; i++) if (b.mean[i]! > b.mean[best]!) best = i;
    return {
      arm,
      seeds: rs.length,
      initialAccuracy: rs.reduce((a, r) => a + (r.points[0]?.accuracy ?? 0), 0) / rs.length,
      finalMean: mean,
      finalStd: std,
      bestMean: b.mean[best] ?? Number.NaN,
      flopsAtBest: b.x[best] ?? Number.NaN,
      totalFlops: Math.max(...rs.map((r) => r.points[r.points.length - 1]?.flops ?? 0)),
      totalSeconds: Math.max(...rs.map((r) => r.points[r.points.length - 1]?.seconds ?? 0)),
    };
  });
}

/**
 * The paper's headline: FLOPs the baseline needs to reach its best accuracy, divided by the FLOPs
 * `arm` needs to reach that same accuracy (null when the arm never gets there).
 */
export function computeRatio(runs: ArmRun[], baseline: string, arm: string): { target: number; ratio: number | null; armFlops: number | null; baselineFlops: number } | null {
  const base = summarize(runs.filter((r) => r.arm === baseline))[0];
  if (!base) return null;
  const armBand = band(runs.filter((r) => r.arm === arm), 'flops');
  const reach = firstReach(armBand, base.bestMean);
  return { target: base.bestMean, baselineFlops: base.flopsAtBest, armFlops: reach, ratio: reach && reach > 0 ? base.flopsAtBest / reach : null };
}
