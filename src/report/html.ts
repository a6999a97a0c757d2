/**
 * The experiment's report: a self-contained HTML page (opens offline: Chart.js is inlined from its
 * npm package, the data is embedded as JSON, every chart is drawn from that data in the page) and
 * data.json beside it with everything the page shows.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { writeFailure } from '../core/files.js';
import { createRequire } from 'node:module';
import path from 'node:path';
import { FIT_FROM, meanCurve, type ArmRun, type Headline, type LogLinearFit, type MappingTax } from './curves.js';

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

/** Stage 1: SFT on teacher samples from the initial student to the checkpoint every arm starts from. */
export interface Stage1Report {
  curve: Array<{ step: number; flops: number; seconds: number; validation: number }>;
  steps: number;
  flops: number;
  seconds: number;
  /** 'rule': a doubling of SFT compute gained less than the threshold; 'cap': the step cap came first */
  stopped: 'rule' | 'cap';
  validation: number;
  test: number;
  initialTest: number;
  params: number;
  tokenizer: string;
}

/** One student (the cross-tokenizer one, or the same-tokenizer control) through both stages. */
export interface RoleReport {
  role: 'cross' | 'same';
  student: string;
  stage1: Stage1Report;
  /** every (arm, rate) of the grid, seed 1: validation accuracy at the end (what the rate is chosen on) and test */
  grid: Array<{ arm: string; lr: number; validation: number; test: number }>;
  chosen: Record<string, number>;
  /** the runs at the chosen rates, every seed */
  runs: ArmRun[];
  alignment: AlignmentStats[];
}

/** The diagnosis of an SFT checkpoint (src/experiment/diagnose.ts): where its answers go wrong and what each arm's gradient looks like there. */
export interface FirstError {
  question: string;
  response: string;
  /** character offset of the wrong chunk in the response */
  at: number;
  place: string;
  /** the student's text of the chunk and the teacher's probability of it */
  studentText: string;
  teacherProb: number;
  /** the teacher's top alternatives at the chunk's first teacher position */
  teacherTop: Array<{ text: string; p: number }>;
  /** the student's probability of its own first token there, and of the student tokens that begin with the teacher's top text */
  studentProbOwn: number;
  studentProbTeacherTop: number;
}

export interface ArmGradient {
  arm: string;
  /** L2 norm of d loss / d logits over the batch */
  logitGradNorm: number;
  /** L2 norm of the parameter gradient */
  paramGradNorm: number;
  /** OPD arms: share of the squared logit-gradient norm on rows of wrong chunks */
  wrongShare: number | null;
  /** OPD arms: share of the batch's student tokens in wrong chunks */
  wrongRows: number | null;
}

export interface DiagnosisResult {
  kind: 'diagnose';
  n: number;
  correct: number;
  /** wrong answers by the place of their first wrong chunk */
  places: Record<string, number>;
  /** wrong answers whose every chunk the teacher accepts (the teacher follows the student's mistake) */
  unflagged: number;
  /** mean over wrong answers: teacher probability of the student's wrong chunk; student probability of its token and of the teacher's top */
  mean: { teacherProbOfStudent: number; studentProbOwn: number; studentProbTeacherTop: number; teacherTopProb: number };
  examples: FirstError[];
  gradients: ArmGradient[];
}

export interface RegimeReport {
  name: string;
  title: string;
  teacher: string;
  /** stage-2 FLOPs per run */
  budget: number;
  settings: unknown;
  cross: RoleReport;
  /** the same-tokenizer control (absent when the regime ran none) */
  same?: RoleReport;
  sftFit: LogLinearFit | null;
  headline: Headline[];
  /** the control's OPD arms against the control's own continued SFT (empty when the control ran no SFT) */
  sameHeadline?: Headline[];
  tax: MappingTax[];
  /** the cross-tokenizer student's SFT checkpoint, diagnosed */
  diagnosis?: DiagnosisResult;
}

export interface ExperimentReport {
  title: string;
  command: string;
  machine: string;
  date: string;
  projection: string;
  armLabels: Record<string, string>;
  regimes: RegimeReport[];
  notes: string[];
  /** CPU seconds (all threads) the runs recorded: what the protocol costs whatever the machine's load */
  cost?: { runs: number; cpuSeconds: number; stage1CpuSeconds: number; unrecorded: number };
}

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  /** markers only, no line */
  markers?: boolean;
  points: Array<{ x: number; y: number }>;
  /** spread over seeds at the same x (min and max) */
  band?: Array<{ x: number; min: number; max: number }>;
}

export interface ChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  logX: boolean;
  series: Series[];
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

function armSeries(runs: ArmRun[], arm: string, color: string, axis: 'flops' | 'seconds', label = arm, offset = 0, dashed = false): Series {
  const mine = runs.filter((r) => r.arm === arm);
  const c = meanCurve(mine);
  const xs = axis === 'flops' ? c.flops : c.seconds;
  const keep = xs.map((x) => axis !== 'flops' || x > 0); // a log axis cannot show x = 0
  const n = c.mean.length;
  const at = (i: number, f: (ys: number[]) => number) => f(mine.map((r) => r.points[i]!.accuracy)) - offset;
  return {
    label, color, dashed,
    points: xs.map((x, i) => ({ x, y: c.mean[i]! - offset })).filter((_, i) => keep[i]),
    band: mine.length > 1 ? Array.from({ length: n }, (_, i) => ({ x: xs[i]!, min: at(i, (v) => Math.min(...v)), max: at(i, (v) => Math.max(...v)) })).filter((_, i) => keep[i]) : undefined,
  };
}

/** The charts the page draws; exported so tests can check exactly what is plotted. */
export function chartSpecs(report: ExperimentReport): ChartSpec[] {
  const out: ChartSpec[] = [];
  for (const r of report.regimes) {
    const arms = [...new Set(r.cross.runs.map((x) => x.arm))];
    const color = (arm: string) => PALETTE[Math.max(0, Object.keys(report.armLabels).indexOf(arm)) % PALETTE.length]!;
    const flops: ChartSpec = {
      id: `${r.name}-acc-vs-flops`, title: `${r.name}: test accuracy against stage-2 compute (from the SFT checkpoint)`,
      xLabel: 'stage-2 FLOPs (student + teacher, forward + backward)', yLabel: 'test accuracy (%)', logX: true,
      series: arms.map((a) => armSeries(r.cross.runs, a, color(a), 'flops')),
    };
    if (r.sftFit) {
      // The fit over the span it was made on, carried out to the farthest extrapolated point.
      const end = r.budget;
      const far = Math.max(end, ...r.headline.filter((h) => h.how === 'extrapolated').map((h) => h.sftFlops));
      const from = FIT_FROM * end;
      const pts = Array.from({ length: 24 }, (_, i) => from * (far / from) ** (i / 23));
      flops.series.push({ label: `sft log-linear fit (${(100 * r.sftFit.perDoubling).toFixed(2)} points per doubling)`, color: color('sft'), dashed: true, points: pts.map((x) => ({ x, y: r.sftFit!.a + r.sftFit!.b * Math.log(x) })) });
      const ex = r.headline.filter((h) => h.how === 'extrapolated');
      if (ex.length) flops.series.push({ label: 'sft compute for an arm\'s final accuracy (extrapolated)', color: '#000000', markers: true, points: ex.map((h) => ({ x: h.sftFlops, y: h.target })) });
    }
    out.push(flops);
    out.push({
      id: `${r.name}-acc-vs-seconds`, title: `${r.name}: test accuracy against stage-2 wall time`, xLabel: 'wall seconds (evaluation excluded)', yLabel: 'test accuracy (%)', logX: false,
      series: arms.map((a) => armSeries(r.cross.runs, a, color(a), 'seconds')),
    });
    const controlArms = r.tax.map((t) => t.arm);
    const same = r.same;
    if (same) out.push({
      id: `${r.name}-control`, title: `${r.name}: gain over each student's own SFT checkpoint — cross-tokenizer (solid) and same-tokenizer control (dashed)`,
      xLabel: 'stage-2 FLOPs', yLabel: 'test accuracy gained (points)', logX: true,
      series: controlArms.flatMap((a) => [
        armSeries(r.cross.runs, a, color(a), 'flops', `${a} (${r.cross.student})`, r.cross.runs.find((x) => x.arm === a)?.points[0]?.accuracy ?? 0),
        armSeries(same.runs, a, color(a), 'flops', `${a} (${same.student})`, same.runs.find((x) => x.arm === a)?.points[0]?.accuracy ?? 0, true),
      ]),
    });
    out.push({
      id: `${r.name}-stage1`, title: `${r.name}: stage 1, validation accuracy against SFT compute`, xLabel: 'stage-1 FLOPs', yLabel: 'validation accuracy (%)', logX: true,
      series: [r.cross, ...(same ? [same] : [])].map((role, i) => ({ label: role.student, color: PALETTE[i]!, dashed: role.role === 'same', points: role.stage1.curve.filter((p) => p.flops > 0).map((p) => ({ x: p.flops, y: p.validation })) })),
    });
  }
  return out;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

const sci = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? (x === Infinity ? '∞' : '–') : x.toExponential(2));
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');
const pts = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}` : '–');

/** The ratio as the page and the CLI print it. */
export function ratioText(h: Headline): string {
  if (h.ratio === null) return h.how === 'no gain' ? 'no gain' : '–';
  if (h.ratio === Infinity) return '∞ (SFT\'s fit does not rise)';
  return `${h.ratio.toFixed(2)}×`;
}

function regimeHtml(report: ExperimentReport, r: RegimeReport): string {
  const label = (a: string) => esc(report.armLabels[a] ?? a);
  const stage1Rows = [r.cross, ...(r.same ? [r.same] : [])].map((x) => `<tr><td>${esc(x.student)} (${x.role === 'cross' ? 'cross-tokenizer' : 'same tokenizer as the teacher'})</td><td>${x.stage1.params}</td><td>${pct(x.stage1.initialTest)}</td><td>${x.stage1.steps}</td><td>${x.stage1.stopped === 'rule' ? 'gain per doubling below the threshold' : 'step cap'}</td><td>${sci(x.stage1.flops)}</td><td>${x.stage1.seconds.toFixed(0)}</td><td>${pct(x.stage1.validation)}</td><td>${pct(x.stage1.test)}</td></tr>`).join('\n');
  const armsRows = [...new Set(r.cross.runs.map((x) => x.arm))].map((arm) => {
    const runs = r.cross.runs.filter((x) => x.arm === arm);
    const c = meanCurve(runs);
    const finals = runs.map((x) => x.points[x.points.length - 1]!.accuracy);
    const sd = finals.length > 1 ? Math.sqrt(finals.reduce((a, b) => a + (b - c.mean[c.mean.length - 1]!) ** 2, 0) / (finals.length - 1)) : 0;
    const grid = r.cross.grid.filter((g) => g.arm === arm).map((g) => `${g.lr}: ${pct(g.validation)}`).join(', ');
    const h = r.headline.find((x) => x.arm === arm);
    return `<tr><td>${label(arm)}</td><td>${r.cross.chosen[arm]}</td><td>${esc(grid)}</td><td>${pct(c.mean[0]!)}</td><td>${pct(c.mean[c.mean.length - 1]!)} ± ${pts(sd)}</td><td>${runs.length}</td><td>${h ? sci(h.armFlops) : 'baseline'}</td><td>${h ? sci(h.sftFlops) : '–'}</td><td>${h ? esc(ratioText(h)) : 'baseline'}</td><td>${h ? esc(h.how) : '–'}</td></tr>`;
  }).join('\n');
  const taxRows = r.tax.map((t) => `<tr><td>${label(t.arm)}</td><td>${r.cross.chosen[t.arm]} / ${r.same?.chosen[t.arm]}</td><td>${pts(t.crossFinalGain)}</td><td>${pts(t.sameFinalGain)}</td><td>${pts(t.gain)}</td><td>${sci(t.crossFlops)}</td><td>${sci(t.sameFlops)}</td><td>${t.tax === null ? '–' : t.tax.toFixed(2)}</td></tr>`).join('\n');
  const sameRows = (r.sameHeadline ?? []).map((h) => `<tr><td>${label(h.arm)}</td><td>${r.same?.chosen[h.arm]}</td><td>${pct(h.target)}</td><td>${sci(h.armFlops)}</td><td>${sci(h.sftFlops)}</td><td>${esc(ratioText(h))}</td><td>${esc(h.how)}</td></tr>`).join('\n');
  const alignRows = r.cross.alignment.map((a) => `<tr><td>${esc(a.arm)}</td><td>${a.chunks}</td><td>${pct(a.oneToOneShare)}</td><td>${pct(a.maskedShare)}</td><td>${a.meanStudentPerChunk.toFixed(2)}</td><td>${a.meanTeacherPerChunk.toFixed(2)}</td></tr>`).join('\n');
  const fit = r.sftFit ? `SFT's log-linear fit (test accuracy = a + b·ln FLOPs, on its mean curve from ${FIT_FROM} of the budget on, ${r.sftFit.n} points): a = ${r.sftFit.a.toFixed(4)}, b = ${r.sftFit.b.toFixed(5)}, ${(100 * r.sftFit.perDoubling).toFixed(2)} points per doubling of compute, R² = ${r.sftFit.r2.toFixed(3)}.` : 'No SFT arm: no fit.';
  const chart = (id: string, title: string) => `<h3>${esc(title)}</h3><div class="chart"><canvas id="${esc(id)}"></canvas></div>`;
  return `<h2>Regime ${esc(r.name)}: ${esc(r.title)}</h2>
<p>Teacher <code>${esc(r.teacher)}</code>; student <code>${esc(r.cross.student)}</code>; control <code>${esc(r.same?.student ?? 'none')}</code>. Stage-2 budget ${sci(r.budget)} FLOPs per run.</p>
<h3>Stage 1: the SFT checkpoint (its cost is charged to no arm)</h3>
<table><tr><th>student</th><th>parameters</th><th>test before</th><th>SFT steps</th><th>stopped by</th><th>FLOPs</th><th>seconds</th><th>validation</th><th>test</th></tr>
${stage1Rows}</table>
${chart(`${r.name}-stage1`, 'Stage 1')}
<h3>Stage 2: arms from the checkpoint, equal FLOPs</h3>
${chart(`${r.name}-acc-vs-flops`, 'Test accuracy against FLOPs (mean over seeds, band: min–max), with continued SFT\'s fit')}
${chart(`${r.name}-acc-vs-seconds`, 'Test accuracy against wall time')}
<table><tr><th>arm</th><th>lr chosen</th><th>grid (validation at the end)</th><th>start</th><th>final ± sd</th><th>seeds</th><th>FLOPs to its final accuracy</th><th>SFT FLOPs for it</th><th>compute ratio vs continued SFT</th><th>SFT figure</th></tr>
${armsRows}</table>
<p>${esc(fit)}</p>
<h3>Same-tokenizer control: the mapping tax</h3>
${r.same ? chart(`${r.name}-control`, 'Gain over each student\'s own checkpoint') : '<p>No control in this run.</p>'}
<table><tr><th>arm</th><th>lr (cross / same)</th><th>final gain, cross (points)</th><th>final gain, same</th><th>Δ compared</th><th>FLOPs to Δ, cross</th><th>FLOPs to Δ, same</th><th>mapping tax</th></tr>
${taxRows}</table>
${sameRows ? `<h3>Same-tokenizer control: its OPD arms against its own continued SFT</h3>
<table><tr><th>arm</th><th>lr chosen</th><th>final accuracy (mean)</th><th>FLOPs to it</th><th>SFT FLOPs for it</th><th>compute ratio vs continued SFT</th><th>SFT figure</th></tr>
${sameRows}</table>` : ''}
${r.diagnosis ? diagnosisHtml(r.diagnosis) : ''}
<h3>Alignment statistics (cross-tokenizer student, all seeds)</h3>
<table><tr><th>arm</th><th>chunks</th><th>1:1 chunks</th><th>student tokens masked</th><th>student tokens / chunk</th><th>teacher tokens / chunk</th></tr>
${alignRows}</table>`;
}

function diagnosisHtml(d: DiagnosisResult): string {
  const wrong = d.n - d.correct;
  const places = Object.entries(d.places).sort((a, b) => b[1] - a[1]).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td><td>${pct(v / Math.max(1, wrong))}</td></tr>`).join('');
  const ex = d.examples.map((e) => `<tr><td>${esc(e.place)}</td><td><code>${esc(e.response.slice(Math.max(0, e.at - 40), e.at))}<b>${esc(e.studentText)}</b></code></td><td>${pct(e.teacherProb)}</td><td>${esc(e.teacherTop.map((t) => `${JSON.stringify(t.text)} ${pct(t.p)}`).join(', '))}</td><td>${pct(e.studentProbOwn)}</td><td>${pct(e.studentProbTeacherTop)}</td></tr>`).join('\n');
  const grads = d.gradients.map((g) => `<tr><td>${esc(g.arm)}</td><td>${sci(g.logitGradNorm)}</td><td>${sci(g.paramGradNorm)}</td><td>${g.wrongShare === null ? '–' : pct(g.wrongShare)}</td><td>${g.wrongRows === null ? '–' : pct(g.wrongRows)}</td></tr>`).join('\n');
  return `<h3>Where the checkpoint goes wrong, and what each arm's signal does there</h3>
<p>Greedy answers of the SFT checkpoint to ${d.n} validation problems: ${d.correct} right. In each wrong answer, the first chunk the teacher gives less than 5% (${d.unflagged} wrong answers have none: the teacher follows the mistake). Means over those chunks: teacher probability of the student's chunk ${pct(d.mean.teacherProbOfStudent)}; teacher's top alternative ${pct(d.mean.teacherTopProb)}; the student's probability of its own token ${pct(d.mean.studentProbOwn)} and of the student tokens that begin with the teacher's top text ${pct(d.mean.studentProbTeacherTop)}.</p>
<table><tr><th>place of the first wrong chunk</th><th>answers</th><th>share</th></tr>${places}</table>
<table><tr><th>place</th><th>response up to the wrong chunk (bold)</th><th>teacher p(chunk)</th><th>teacher top at its first token</th><th>student p(own)</th><th>student p(teacher's top)</th></tr>
${ex}</table>
<p>Gradient scales of one step from the checkpoint (same batch size; OPD arms on the same rollouts): the L2 norm of d loss / d logits and of the parameter gradient, and for OPD arms the share of the squared logit gradient on the tokens of chunks the teacher gives less than 5%.</p>
<table><tr><th>arm</th><th>|d loss / d logits|</th><th>|parameter gradient|</th><th>share on wrong chunks</th><th>tokens in wrong chunks</th></tr>
${grads}</table>`;
}

export function renderReportHtml(report: ExperimentReport): string {
  const charts = chartSpecs(report);
  // The UMD build sits beside the package's main entry (its exports map does not list it).
  const chartJs = readFileSync(path.join(path.dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  const data = JSON.stringify({ charts }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(report.title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;max-width:1150px;margin:24px auto;padding:0 16px;color:#222}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.chart{height:380px;margin:18px 0}code{background:#f3f3f3;padding:1px 4px}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px}
</style></head><body>
<h1>${esc(report.title)}</h1>
<p>Command: <code>${esc(report.command)}</code><br>Machine: ${esc(report.machine)}<br>Date: ${esc(report.date)}<br>Span projection: <code>${esc(report.projection)}</code>${report.cost ? `<br>Cost: ${report.cost.runs} runs, ${(report.cost.cpuSeconds / 3600).toFixed(2)} CPU hours (stage 1: ${(report.cost.stage1CpuSeconds / 3600).toFixed(2)})${report.cost.unrecorded ? `, ${report.cost.unrecorded} runs unrecorded` : ''}` : ''}</p>
${report.regimes.map((r) => regimeHtml(report, r)).join('\n')}
${report.notes.length ? `<h2>Notes</h2><ul>${report.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<script>${chartJs}</script>
<script id="xopd-data" type="application/json">${data}</script>
<script>
const DATA = JSON.parse(document.getElementById('xopd-data').textContent);
for (const c of DATA.charts) {
  const datasets = [];
  for (const s of c.series) {
    if (s.band) {
      datasets.push({ label: s.label + ' (min)', data: s.band.map((b) => ({ x: b.x, y: b.min * 100 })), borderWidth: 0, pointRadius: 0, showLine: true, fill: false, borderColor: s.color });
      datasets.push({ label: s.label + ' (max)', data: s.band.map((b) => ({ x: b.x, y: b.max * 100 })), borderWidth: 0, pointRadius: 0, showLine: true, fill: '-1', backgroundColor: s.color + '33', borderColor: s.color });
    }
    datasets.push({ label: s.label, data: s.points.map((p) => ({ x: p.x, y: p.y * 100 })), borderWidth: 2, pointRadius: s.markers ? 6 : 2,
      pointStyle: s.markers ? 'crossRot' : 'circle', showLine: !s.markers, fill: false, borderColor: s.color, backgroundColor: s.color, borderDash: s.dashed ? [6, 4] : [] });
  }
  const el = document.getElementById(c.id);
  if (!el) continue;
  new Chart(el, { type: 'scatter', data: { datasets }, options: {
    animation: false, maintainAspectRatio: false,
    plugins: { legend: { labels: { filter: (l) => !/\\((min|max)\\)$/.test(l.text) } } },
    scales: { x: { type: c.logX ? 'logarithmic' : 'linear', title: { display: true, text: c.xLabel },
                   ticks: c.logX ? { callback: (v) => { const e = Math.log10(v); return Math.abs(e - Math.round(e)) < 1e-9 ? '1e' + Math.round(e) : ''; } } : {} },
              y: { title: { display: true, text: c.yLabel } } } } });
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
