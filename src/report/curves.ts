/**
 * Accuracy curves of the experiment and the numbers read off them: per-arm mean and spread over
 * seeds, the log-linear fit of continued SFT's curve, the paper's headline (the compute OPD needs to
 * reach its final accuracy against the compute continued SFT needs for the same accuracy) and the
 * mapping tax (cross-tokenizer OPD against same-tokenizer OPD for the same gain).
 */

export interface CurvePoint {
  step: number;
  /** cumulative FLOPs of the stage (student and teacher, forward and backward) at this evaluation */
  flops: number;
  /** cumulative wall seconds at this evaluation (evaluation time excluded) */
  seconds: number;
  /** test accuracy in [0, 1] */
  accuracy: number;
  /** validation accuracy in [0, 1] (train-split problems held out; what the learning rate is chosen on) */
  validation?: number;
}

export interface ArmRun {
  arm: string;
  seed: number;
  /** the student's learning rate */
  lr?: number;
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

/**
 * The mean curve of runs evaluated at the same points (the experiment evaluates every run at the
 * same fractions of its FLOP budget): x is the mean FLOPs at each evaluation, y the mean test
 * accuracy, sd its standard deviation over the runs.
 */
export function meanCurve(runs: ArmRun[]): { flops: number[]; seconds: number[]; mean: number[]; sd: number[] } {
  const n = Math.min(...runs.map((r) => r.points.length));
  const out = { flops: [] as number[], seconds: [] as number[], mean: [] as number[], sd: [] as number[] };
  if (runs.length === 0) return out;
  for (let i = 0; i < n; i++) {
    const at = (f: (p: CurvePoint) => number) => runs.map((r) => f(r.points[i]!));
    const m = mean(at((p) => p.accuracy));
    out.flops.push(mean(at((p) => p.flops)));
    out.seconds.push(mean(at((p) => p.seconds)));
    out.mean.push(m);
    out.sd.push(sd(at((p) => p.accuracy)));
  }
  return out;
}

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** Sample standard deviation (n − 1); 0 for a single value. */
export function sd(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

/** The first x at which the band's mean reaches `target` (interpolated), or null. */
export function firstReach(b: Band, target: number): number | null {
  return firstCrossing(b.x, b.mean, target);
}

/** The first x at which y(x), linear between points, reaches `target`; null when it never does. */
export function firstCrossing(xs: number[], ys: number[], target: number): number | null {
  for (let i = 0; i < xs.length; i++) {
    if (ys[i]! >= target) {
      if (i === 0) return xs[0]!;
      const t = (target - ys[i - 1]!) / (ys[i]! - ys[i - 1]! || 1);
      return xs[i - 1]! + t * (xs[i]! - xs[i - 1]!);
    }
  }
  return null;
}

/** Least squares y = a + b·ln(x) over the points with x > 0. */
export interface LogLinearFit {
  a: number;
  b: number;
  /** coefficient of determination of the fit on its points */
  r2: number;
  /** the points the fit used */
  n: number;
  /** accuracy gained per doubling of compute: b · ln 2 */
  perDoubling: number;
}

export function logLinearFit(xs: number[], ys: number[]): LogLinearFit | null {
  const pts = xs.map((x, i) => [x, ys[i]!] as const).filter(([x, y]) => x > 0 && Number.isFinite(y));
  if (pts.length < 2) return null;
  const lx = pts.map(([x]) => Math.log(x)), ly = pts.map(([, y]) => y);
  const mx = mean(lx), my = mean(ly);
  let sxx = 0, sxy = 0, syy = 0;
  for (let i = 0; i < pts.length; i++) {
    sxx += (lx[i]! - mx) ** 2;
    sxy += (lx[i]! - mx) * (ly[i]! - my);
    syy += (ly[i]! - my) ** 2;
  }
  if (sxx === 0) return null;
  const b = sxy / sxx, a = my - b * mx;
  const res = ly.reduce((s, y, i) => s + (y - (a + b * lx[i]!)) ** 2, 0);
  return { a, b, r2: syy > 0 ? 1 - res / syy : 1, n: pts.length, perDoubling: b * Math.LN2 };
}

/** FLOPs at which the fit reaches `target`; Infinity when it does not rise. */
export function fitReach(fit: LogLinearFit, target: number): number {
  if (!(fit.b > 0)) return Infinity;
  return Math.exp((target - fit.a) / fit.b);
}

/** The part of continued SFT's curve the log-linear fit is made on: evaluations from 1/8 of the budget on. */
export const FIT_FROM = 1 / 8;

/** The log-linear fit of a mean curve over its points from FIT_FROM of its last FLOPs on. */
export function sftFit(curve: { flops: number[]; mean: number[] }): LogLinearFit | null {
  const end = curve.flops[curve.flops.length - 1] ?? 0;
  const keep = curve.flops.map((x) => x >= FIT_FROM * end * 0.999 && x > 0);
  return logLinearFit(curve.flops.filter((_, i) => keep[i]), curve.mean.filter((_, i) => keep[i]));
}

export interface Headline {
  arm: string;
  /** the arm's final mean test accuracy: the accuracy the comparison is made at */
  target: number;
  /** FLOPs of the arm's mean curve when it first reaches `target` */
  armFlops: number;
  /** FLOPs continued SFT needs for `target`: read off its mean curve, or its log-linear fit */
  sftFlops: number;
  how: 'measured' | 'extrapolated' | 'no gain' | 'never (fit does not rise)';
  /** sftFlops / armFlops: above 1, the arm is the cheaper way to that accuracy */
  ratio: number | null;
}

/**
 * The paper's headline for one arm: the compute the arm needs to reach its final accuracy, against
 * the compute continued SFT needs to reach the same accuracy — measured where SFT's mean curve gets
 * there within its budget, else extrapolated on the log-linear fit of SFT's curve. An arm that ends
 * at or below the checkpoint's accuracy gained nothing: no ratio.
 */
export function headline(arm: string, armRuns: ArmRun[], sftRuns: ArmRun[]): Headline {
  const a = meanCurve(armRuns), s = meanCurve(sftRuns);
  const target = a.mean[a.mean.length - 1]!;
  const start = a.mean[0]!;
  const armFlops = firstCrossing(a.flops, a.mean, target)!;
  if (!(target > start)) return { arm, target, armFlops, sftFlops: Number.NaN, how: 'no gain', ratio: null };
  const measured = firstCrossing(s.flops, s.mean, target);
  if (measured !== null) return { arm, target, armFlops, sftFlops: measured, how: 'measured', ratio: armFlops > 0 ? measured / armFlops : null };
  const fit = sftFit(s);
  const f = fit ? fitReach(fit, target) : Infinity;
  if (!Number.isFinite(f)) return { arm, target, armFlops, sftFlops: Infinity, how: 'never (fit does not rise)', ratio: Infinity };
  return { arm, target, armFlops, sftFlops: f, how: 'extrapolated', ratio: armFlops > 0 ? f / armFlops : null };
}

export interface MappingTax {
  arm: string;
  /** the gain over each student's own SFT checkpoint both reach (the smaller of the two final gains) */
  gain: number;
  crossFlops: number;
  sameFlops: number;
  /** crossFlops / sameFlops: 1 means the tokenizer mapping costs nothing */
  tax: number | null;
  crossFinalGain: number;
  sameFinalGain: number;
}

/**
 * The mapping tax of an OPD arm: the FLOPs cross-tokenizer OPD needs to gain `gain` over its own
 * SFT checkpoint, over the FLOPs same-tokenizer OPD needs to gain as much over its own, with `gain`
 * the smaller of the two final mean gains (both reach it). No tax when either gains nothing.
 */
export function mappingTax(arm: string, cross: ArmRun[], same: ArmRun[]): MappingTax {
  const c = meanCurve(cross), s = meanCurve(same);
  const gc = c.mean.map((y) => y - c.mean[0]!), gs = s.mean.map((y) => y - s.mean[0]!);
  const crossFinalGain = gc[gc.length - 1]!, sameFinalGain = gs[gs.length - 1]!;
  const gain = Math.min(crossFinalGain, sameFinalGain);
  if (!(gain > 0)) return { arm, gain, crossFlops: Number.NaN, sameFlops: Number.NaN, tax: null, crossFinalGain, sameFinalGain };
  const crossFlops = firstCrossing(c.flops, gc, gain)!, sameFlops = firstCrossing(s.flops, gs, gain)!;
  return { arm, gain, crossFlops, sameFlops, tax: sameFlops > 0 ? crossFlops / sameFlops : null, crossFinalGain, sameFinalGain };
}
