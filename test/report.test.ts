// The experiment's numbers and report: mean curves over seeds, the log-linear fit of continued SFT,
// the headline (measured or extrapolated), the mapping tax, and the self-contained HTML page.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { band, firstCrossing, firstReach, headline, logLinearFit, mappingTax, meanCurve, sftFit, type ArmRun } from '../src/report/curves.js';
import { chartSpecs, writeReport, type ExperimentReport, type RoleReport } from '../src/report/html.js';

const FRACTIONS = [0, 1 / 16, 1 / 8, 1 / 4, 3 / 8, 1 / 2, 5 / 8, 3 / 4, 7 / 8, 1];
const BUDGET = 1e12;

/** Runs of one arm whose accuracy follows acc(flops), each seed shifted by `jitter` points. */
function runs(arm: string, acc: (flops: number) => number, seeds = [1, 2, 3], jitter = 0.004): ArmRun[] {
  return seeds.map((seed) => ({
    arm, seed, lr: 1e-4,
    points: FRACTIONS.map((f, i) => ({ step: i * 10, flops: f * BUDGET, seconds: f * 100, accuracy: acc(f * BUDGET) + (i === 0 ? 0 : (seed - 2) * jitter), validation: acc(f * BUDGET) })),
  }));
}

// Continued SFT: 0.80 at the checkpoint, then exactly 0.80 + 0.01·log2(F / 1e10) from 1e10 on.
const sftAcc = (f: number) => (f <= 1e10 ? 0.8 : 0.8 + 0.01 * Math.log2(f / 1e10));

describe('curves', () => {
  it('meanCurve: mean and sd over seeds at each evaluation', () => {
    const c = meanCurve(runs('sft', sftAcc));
    expect(c.flops).toEqual(FRACTIONS.map((f) => f * BUDGET));
    expect(c.mean[9]).toBeCloseTo(sftAcc(BUDGET), 12);
    expect(c.sd[9]).toBeCloseTo(0.004, 12); // seeds at -0.004, 0, +0.004
    expect(c.sd[0]).toBeCloseTo(0, 12);
  });

  it('logLinearFit recovers a + b ln x exactly and reports points per doubling', () => {
    const xs = [1e9, 2e9, 4e9, 8e9], ys = xs.map((x) => 0.3 + 0.02 * Math.log(x));
    const f = logLinearFit([0, ...xs], [0.1, ...ys])!; // x = 0 is left out
    expect(f.n).toBe(4);
    expect(f.b).toBeCloseTo(0.02, 10);
    expect(f.a).toBeCloseTo(0.3, 8);
    expect(f.r2).toBeCloseTo(1, 12);
    expect(f.perDoubling).toBeCloseTo(0.02 * Math.LN2, 12);
    expect(logLinearFit([1], [0.5])).toBeNull();
  });

  it('sftFit uses the points from 1/8 of the budget on', () => {
    const f = sftFit(meanCurve(runs('sft', sftAcc)))!;
    expect(f.n).toBe(8);
    expect(f.perDoubling).toBeCloseTo(0.01, 10); // exactly log-linear there
  });

  it('firstCrossing interpolates between points and says when a curve never gets there', () => {
    expect(firstCrossing([0, 1, 2], [0, 0.5, 1], 0.75)).toBeCloseTo(1.5);
    expect(firstCrossing([0, 1], [0, 0.5], 0.75)).toBeNull();
    expect(firstReach({ x: [0, 1, 2], mean: [0, 0.5, 1], min: [], max: [] }, 0.25)).toBeCloseTo(0.5);
  });

  it('band interpolates onto a common grid with mean/min/max over seeds', () => {
    const b = band(runs('sft', sftAcc), 'flops', 5);
    expect(b.x).toEqual([0, 0.25e12, 0.5e12, 0.75e12, 1e12]);
    for (let i = 0; i < 5; i++) expect(b.min[i]! <= b.mean[i]! + 1e-12 && b.mean[i]! <= b.max[i]! + 1e-12).toBe(true);
  });
});

describe('headline: the compute an arm needs for its final accuracy, against continued SFT', () => {
  const sft = runs('sft', sftAcc);
  it('measured where SFT reaches the arm\'s final accuracy within its budget', () => {
    // an arm at SFT's accuracy of 1/4 of the budget, reached at 1/16 of it
    const target = sftAcc(BUDGET / 4);
    const arm = runs('fast', (f) => (f === 0 ? 0.8 : f < BUDGET / 16 ? 0.8 : target), [1], 0);
    const h = headline('fast', arm, sft);
    expect(h.how).toBe('measured');
    expect(h.target).toBeCloseTo(target, 12);
    expect(h.armFlops).toBeCloseTo(BUDGET / 16, 0);
    // SFT crosses `target` exactly at its 1/4 evaluation
    expect(h.sftFlops).toBeCloseTo(BUDGET / 4, -2);
    expect(h.ratio).toBeCloseTo(4, 6);
  });
  it('extrapolated on the log-linear fit when SFT does not get there', () => {
    const target = sftAcc(BUDGET) + 0.03; // three more doublings of SFT
    const arm = runs('past', (f) => (f === 0 ? 0.8 : target), [1], 0);
    const h = headline('past', arm, sft);
    expect(h.how).toBe('extrapolated');
    expect(h.sftFlops / BUDGET).toBeCloseTo(8, 6);
    expect(h.armFlops).toBeCloseTo(BUDGET / 16, 0);
    expect(h.ratio).toBeCloseTo(128, 4);
  });
  it('no gain when the arm ends at or below the checkpoint; never when SFT\'s fit is flat', () => {
    expect(headline('down', runs('down', (f) => 0.8 - f / BUDGET / 10), sft).how).toBe('no gain');
    const flat = runs('sft', () => 0.8);
    const h = headline('up', runs('up', (f) => (f === 0 ? 0.8 : 0.85), [1], 0), flat);
    expect(h.how).toBe('never (fit does not rise)');
    expect(h.ratio).toBe(Infinity);
  });
});

describe('mapping tax', () => {
  it('compares the FLOPs each student needs to gain the smaller final gain over its own checkpoint', () => {
    // cross: 0.5 -> 0.6 linearly over the budget; same: 0.7 -> 0.9, +0.1 at half the budget
    const cross = runs('chunk-pg', (f) => 0.5 + 0.1 * (f / BUDGET), [1], 0);
    const same = runs('chunk-pg', (f) => 0.7 + 0.2 * (f / BUDGET), [1], 0);
    const t = mappingTax('chunk-pg', cross, same);
    expect(t.gain).toBeCloseTo(0.1, 12);
    expect(t.crossFlops).toBeCloseTo(BUDGET, 0);
    expect(t.sameFlops).toBeCloseTo(BUDGET / 2, 0);
    expect(t.tax).toBeCloseTo(2, 9);
    expect(mappingTax('x', runs('x', () => 0.5, [1], 0), same).tax).toBeNull();
  });
});

function role(which: 'cross' | 'same', arms: Record<string, (f: number) => number>): RoleReport {
  const all = Object.entries(arms).flatMap(([arm, acc]) => runs(arm, acc));
  return {
    role: which, student: which === 'cross' ? 'student-llama3' : 'student-qwen3',
    stage1: { curve: [{ step: 0, flops: 0, seconds: 0, validation: 0.3 }, { step: 100, flops: 1e12, seconds: 10, validation: 0.8 }], steps: 100, flops: 1e12, seconds: 10, stopped: 'cap', validation: 0.8, test: 0.8, initialTest: 0.3, params: 1000, tokenizer: 'llama3' },
    grid: Object.keys(arms).flatMap((arm) => [1e-4, 3e-4].map((lr) => ({ arm, lr, validation: 0.8, test: 0.8 }))),
    chosen: Object.fromEntries(Object.keys(arms).map((a) => [a, 1e-4])), runs: all,
    alignment: [{ arm: 'chunk-pg', chunks: 100, oneToOneShare: 0.9, maskedShare: 0.01, meanStudentPerChunk: 1.1, meanTeacherPerChunk: 1.2 }],
  };
}

const report = (): ExperimentReport => {
  const cross = role('cross', { sft: sftAcc, 'chunk-pg': (f) => (f === 0 ? 0.8 : 0.86) });
  const same = role('same', { sft: sftAcc, 'chunk-pg': (f) => (f === 0 ? 0.8 : 0.87) });
  const sftRuns = cross.runs.filter((r) => r.arm === 'sft');
  return {
    title: 'test report', command: 'xopd experiment --quick', machine: 'test', date: '2026-11-27', projection: 'first',
    armLabels: { sft: 'continued SFT', 'chunk-pg': 'chunk-pg <b>' },
    regimes: [{
      name: 'toy', title: 'a toy regime', teacher: 'teacher-qwen3', budget: BUDGET, settings: {}, cross, same,
      sftFit: sftFit(meanCurve(sftRuns)), headline: [headline('chunk-pg', cross.runs.filter((r) => r.arm === 'chunk-pg'), sftRuns)],
      tax: [mappingTax('chunk-pg', cross.runs.filter((r) => r.arm === 'chunk-pg'), same.runs.filter((r) => r.arm === 'chunk-pg'))],
    }],
    notes: ['<script>alert(1)</script> is escaped'],
  };
};

describe('report html', () => {
  it('is self-contained, escapes text, and its charts carry every arm, the fit and the control', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'xopd-report-'));
    const r = report();
    const file = writeReport(dir, r);
    const html = readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/); // nothing loaded from outside
    expect(html).not.toMatch(/https?:\/\/cdn/);
    expect(html).toContain('Chart.js'); // the library is inlined (its banner)
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).not.toContain('chunk-pg <b>');
    const data = JSON.parse(/<script id="xopd-data" type="application\/json">([\s\S]*?)<\/script>/.exec(html)![1]!);
    expect(data.charts).toEqual(JSON.parse(JSON.stringify(chartSpecs(r))));
    expect(data.charts.map((c: { id: string }) => c.id)).toEqual(['toy-acc-vs-flops', 'toy-acc-vs-seconds', 'toy-control', 'toy-stage1']);
    const [flops, , control] = data.charts;
    const labels = flops.series.map((s: { label: string }) => s.label);
    expect(labels.slice(0, 2)).toEqual(['sft', 'chunk-pg']);
    expect(labels[2]).toMatch(/^sft log-linear fit \(1\.00 points per doubling\)$/);
    // chunk-pg ends at 0.86, below SFT's 0.80 + 0.01·log2(100) = 0.866: measured, so no marker series
    expect(flops.series.some((s: { markers?: boolean }) => s.markers)).toBe(false);
    expect(r.regimes[0]!.headline[0]!.how).toBe('measured');
    for (const s of flops.series.slice(0, 2)) {
      expect(s.points.every((p: { x: number }) => p.x > 0)).toBe(true); // log axis: x = 0 left out
      expect(s.band.length).toBe(s.points.length);
    }
    expect(control.series.map((s: { label: string; dashed: boolean }) => [s.label, s.dashed])).toEqual([['chunk-pg (student-llama3)', false], ['chunk-pg (student-qwen3)', true]]);
    expect(control.series[0].points[control.series[0].points.length - 1].y).toBeCloseTo(0.06, 9); // gain over its checkpoint
    expect(JSON.parse(readFileSync(path.join(dir, 'data.json'), 'utf8')).regimes[0].cross.runs.length).toBe(6);
  });

  it('marks an extrapolated SFT compute on the chart', () => {
    const r = report();
    const cross = role('cross', { sft: sftAcc, 'chunk-pg': (f) => (f === 0 ? 0.8 : 0.9) });
    const g = r.regimes[0]!;
    g.cross = cross;
    g.headline = [headline('chunk-pg', cross.runs.filter((x) => x.arm === 'chunk-pg'), cross.runs.filter((x) => x.arm === 'sft'))];
    expect(g.headline[0]!.how).toBe('extrapolated');
    const flops = chartSpecs(r)[0]!;
    const marker = flops.series.find((s) => s.markers)!;
    expect(marker.points).toEqual([{ x: g.headline[0]!.sftFlops, y: g.headline[0]!.target }]);
    const fit = flops.series.find((s) => s.label.startsWith('sft log-linear fit'))!;
    expect(fit.points[fit.points.length - 1]!.x).toBeCloseTo(g.headline[0]!.sftFlops, -3); // drawn out to it
  });
});
