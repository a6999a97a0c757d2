/**
 * A self-contained HTML report (opens offline): Chart.js is inlined from its npm package, the data
 * is embedded as JSON, and every chart is built from that data in the page.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { writeFailure } from '../core/files.js';
import { createRequire } from 'node:module';
import path from 'node:path';
import { band, computeRatio, summarize, type ArmRun } from './curves.js';

export interface AlignmentStats {
  arm: string;
  chunks: number;
  /** share of chunks with one student and one teacher token */
  oneToOneShare: number;
  /** share of student tokens in masked chunks */
  maskedShare: number;
  /** mean student tokens per chunk */
  meanStudentPerChunk: number;
  /** mean teacher tokens per chunk */
  meanTeacherPerChunk: number;
}

export interface ExperimentReport {
  title: string;
  command: string;
  machine: string;
  date: string;
  baseline: string;
  runs: ArmRun[];
  alignment: AlignmentStats[];
  notes: string[];
}

/** The chart configs the page draws; exported so tests can check exactly what is plotted. */
export function chartSpecs(report: ExperimentReport) {
  const arms = [...new Set(report.runs.map((r) => r.arm))];
  const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2'];
  const spec = (axis: 'flops' | 'seconds', title: string, xLabel: string) => ({
    id: `acc-vs-${axis}`,
    title,
    xLabel,
    logX: axis === 'flops',
    series: arms.map((arm, i) => {
      const b = band(report.runs.filter((r) => r.arm === arm), axis);
      // A log axis cannot show x = 0: start at the first positive point.
      const keep = b.x.map((x) => axis !== 'flops' || x > 0);
      const pick = (ys: number[]) => ys.filter((_, j) => keep[j]);
      return { arm, color: palette[i % palette.length]!, x: pick(b.x), mean: pick(b.mean), min: pick(b.min), max: pick(b.max) };
    }),
  });
  return [spec('flops', 'Test accuracy against compute', 'cumulative FLOPs (student + teacher, fwd + bwd)'),
    spec('seconds', 'Test accuracy against wall time', 'wall seconds (evaluation excluded)')];
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

const fmtFlops = (x: number | null) => (x === null || !Number.isFinite(x) ? '–' : x.toExponential(2));
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');

export function renderReportHtml(report: ExperimentReport): string {
  const summary = summarize(report.runs);
  const charts = chartSpecs(report);
  // The UMD build sits beside the package's main entry (its exports map does not list it).
  const chartJs = readFileSync(path.join(path.dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  const ratios = summary.filter((s) => s.arm !== report.baseline).map((s) => ({ arm: s.arm, ...computeRatio(report.runs, report.baseline, s.arm) }));
  const rows = summary.map((s) => {
    const r = ratios.find((x) => x.arm === s.arm);
    return `<tr><td>${esc(s.arm)}</td><td>${s.seeds}</td><td>${pct(s.initialAccuracy)}</td><td>${pct(s.finalMean)} ± ${pct(s.finalStd)}</td><td>${pct(s.bestMean)}</td><td>${fmtFlops(s.flopsAtBest)}</td><td>${fmtFlops(s.totalFlops)}</td><td>${s.totalSeconds.toFixed(1)}</td><td>${s.arm === report.baseline ? 'baseline' : r?.ratio ? `${r.ratio.toFixed(2)}×` : 'not reached'}</td></tr>`;
  }).join('\n');
  const alignRows = report.alignment.map((a) => `<tr><td>${esc(a.arm)}</td><td>${a.chunks}</td><td>${pct(a.oneToOneShare)}</td><td>${pct(a.maskedShare)}</td><td>${a.meanStudentPerChunk.toFixed(2)}</td><td>${a.meanTeacherPerChunk.toFixed(2)}</td></tr>`).join('\n');
  const data = JSON.stringify({ charts }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(report.title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.chart{height:380px;margin:18px 0}code{background:#f3f3f3;padding:1px 4px}
</style></head><body>
<h1>${esc(report.title)}</h1>
<p>Command: <code>${esc(report.command)}</code><br>Machine: ${esc(report.machine)}<br>Date: ${esc(report.date)}</p>
${charts.map((c) => `<h2>${esc(c.title)}</h2><div class="chart"><canvas id="${c.id}"></canvas></div>`).join('\n')}
<h2>Summary (mean over seeds)</h2>
<table><tr><th>arm</th><th>seeds</th><th>initial</th><th>final (± sd)</th><th>best</th><th>FLOPs at best</th><th>total FLOPs</th><th>seconds</th><th>compute ratio vs ${esc(report.baseline)}</th></tr>
${rows}</table>
<p>Compute ratio: the FLOPs ${esc(report.baseline)} needs to reach its best mean accuracy, divided by the FLOPs the arm needs to reach that accuracy.</p>
<h2>Alignment statistics</h2>
<table><tr><th>arm</th><th>chunks</th><th>1:1 chunks</th><th>student tokens masked</th><th>student tokens / chunk</th><th>teacher tokens / chunk</th></tr>
${alignRows}</table>
${report.notes.length ? `<h2>Notes</h2><ul>${report.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<script>${chartJs}</script>
<script id="xopd-data" type="application/json">${data}</script>
<script>
const DATA = JSON.parse(document.getElementById('xopd-data').textContent);
for (const c of DATA.charts) {
  const datasets = [];
  for (const s of c.series) {
    const pts = (ys) => s.x.map((x, i) => ({ x, y: ys[i] * 100 }));
    datasets.push({ label: s.arm + ' (min)', data: pts(s.min), borderWidth: 0, pointRadius: 0, showLine: true, fill: false, borderColor: s.color });
    datasets.push({ label: s.arm + ' (max)', data: pts(s.max), borderWidth: 0, pointRadius: 0, showLine: true, fill: '-1', backgroundColor: s.color + '33', borderColor: s.color });
    datasets.push({ label: s.arm, data: pts(s.mean), borderWidth: 2, pointRadius: 0, showLine: true, fill: false, borderColor: s.color });
  }
  new Chart(document.getElementById(c.id), { type: 'scatter', data: { datasets }, options: {
    animation: false, maintainAspectRatio: false,
    plugins: { legend: { labels: { filter: (l) => !/\\((min|max)\\)$/.test(l.text) } } },
    scales: { x: { type: c.logX ? 'logarithmic' : 'linear', title: { display: true, text: c.xLabel },
                   ticks: c.logX ? { callback: (v) => { const e = Math.log10(v); return Math.abs(e - Math.round(e)) < 1e-9 ? '1e' + Math.round(e) : ''; } } : {} },
              y: { min: 0, max: 100, title: { display: true, text: 'test accuracy (%)' } } } } });
}
</script>
</body></html>
`;
}

/** Writes dir/index.html (and dir/data.json) atomically; returns the HTML path. */
export function writeReport(dir: string, report: ExperimentReport): string {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw writeFailure('the report folder', dir, err);
  }
  const put = (name: string, text: string) => {
    const file = path.join(dir, name);
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, text);
      renameSync(tmp, file);
    } catch (err) {
      // A full disk leaves a partial temp file: remove it; the previous file (if any) is untouched.
      rmSync(tmp, { force: true });
      throw writeFailure('the report', file, err);
    }
    return file;
  };
  put('data.json', JSON.stringify(report, null, 1));
  return put('index.html', renderReportHtml(report));
}
