// The experiment report: self-contained HTML whose charts carry every arm's series.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { band, computeRatio, firstReach, summarize, type ArmRun } from '../src/report/curves.js';
import { chartSpecs, writeReport, type ExperimentReport } from '../src/report/html.js';

/** Accuracy rising as 1 - exp(-flops / scale), per arm; seeds shift it a little. */
function runs(): ArmRun[] {
  const out: ArmRun[] = [];
  const arms: Array<[string, number]> = [['sft', 4e9], ['chunk-pg', 1e9], ['span-kl', 5e8]];
  for (const [arm, scale] of arms) {
    for (const seed of [1, 2, 3]) {
      const points = Array.from({ length: 11 }, (_, i) => {
        const flops = i * 1e9 * (1 + 0.01 * seed);
        return { step: i * 10, flops, seconds: i * 2, accuracy: 0.2 + 0.6 * (1 - Math.exp(-flops / scale)) };
      });
      out.push({ arm, seed, points });
    }
  }
  return out;
}

const report = (): ExperimentReport => ({
  title: 'test report', command: 'xopd experiment --quick', machine: 'test', date: '2026-11-27', baseline: 'sft',
  runs: runs(),
  alignment: [{ arm: 'chunk-pg', chunks: 100, oneToOneShare: 0.7, maskedShare: 0.02, meanStudentPerChunk: 1.2, meanTeacherPerChunk: 1.5 }],
  notes: ['<script>alert(1)</script> is escaped'],
});

describe('report curves', () => {
  it('band interpolates onto a common grid with mean/min/max over seeds', () => {
    const b = band(runs().filter((r) => r.arm === 'sft'), 'flops', 5);
    expect(b.x.length).toBe(5);
    expect(b.x[0]).toBe(0);
    expect(b.x[4]).toBeCloseTo(10e9 * 1.01, -3); // shortest run's end
    for (let i = 0; i < 5; i++) {
      expect(b.min[i]).toBeLessThanOrEqual(b.mean[i]! + 1e-12);
      expect(b.mean[i]).toBeLessThanOrEqual(b.max[i]! + 1e-12);
    }
    expect(firstReach({ x: [0, 1, 2], mean: [0, 0.5, 1], min: [], max: [] }, 0.75)).toBeCloseTo(1.5);
    expect(firstReach({ x: [0, 1], mean: [0, 0.5], min: [], max: [] }, 0.75)).toBeNull();
  });
  it('summarize and the compute ratio against the baseline', () => {
    const s = summarize(runs());
    expect(s.map((x) => x.arm)).toEqual(['sft', 'chunk-pg', 'span-kl']);
    expect(s[0]!.seeds).toBe(3);
    expect(s[2]!.finalMean).toBeGreaterThan(s[0]!.finalMean);
    const r = computeRatio(runs(), 'sft', 'span-kl')!;
    // span-kl reaches sft's best at about scale * -ln(1 - (best-0.2)/0.6), far less than sft's end.
    expect(r.ratio).toBeGreaterThan(3);
    expect(r.armFlops!).toBeLessThan(r.baselineFlops);
  });
});

describe('report html', () => {
  it('is self-contained and its charts carry the series of every arm', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'xopd-report-'));
    const file = writeReport(dir, report());
    const html = readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/); // nothing loaded from outside
    expect(html).not.toMatch(/https?:\/\/cdn/);
    expect(html).toContain('Chart.js'); // the library is inlined (its banner)
    expect(html).not.toContain('<script>alert(1)</script>');
    const data = JSON.parse(/<script id="xopd-data" type="application\/json">([\s\S]*?)<\/script>/.exec(html)![1]!);
    const specs = chartSpecs(report());
    expect(data.charts).toEqual(JSON.parse(JSON.stringify(specs)));
    expect(data.charts.map((c: { id: string }) => c.id)).toEqual(['acc-vs-flops', 'acc-vs-seconds']);
    for (const c of data.charts) {
      expect(c.series.map((s: { arm: string }) => s.arm)).toEqual(['sft', 'chunk-pg', 'span-kl']);
      for (const s of c.series) {
        expect(s.x.length).toBeGreaterThan(10);
        expect(s.mean.length).toBe(s.x.length);
        expect(Math.max(...s.mean)).toBeGreaterThan(0.5);
      }
    }
    expect(JSON.parse(readFileSync(path.join(dir, 'data.json'), 'utf8')).runs.length).toBe(9);
  });
});
