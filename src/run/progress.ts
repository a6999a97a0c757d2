/**
 * A progress line on stderr: a redrawn bar with rate and ETA when stderr is a terminal, and plain
 * lines (at most one every `plainEverySeconds`, plus the last) when it is a file or pipe, so logs
 * stay readable.
 */
export interface ProgressOptions {
  label?: string;
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** force the terminal (true) or plain-line (false) style; default: stream.isTTY */
  tty?: boolean;
  plainEverySeconds?: number;
  /** unit shown with the rate (default 'it') */
  unit?: string;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(2, '0'), ss = String(r).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  private readonly start = performance.now();
  private lastDraw = 0;
  private lastPlain = -Infinity;
  private done: number;
  private readonly stream: NonNullable<ProgressOptions['stream']>;
  private readonly tty: boolean;
  private drawn = false;

  /** `initial` counts work already done before this run (a resume): it is not used for the rate. */
  constructor(readonly total: number, private readonly opts: ProgressOptions = {}, private readonly initial = 0) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.done = initial;
  }

  /** Text of the current state: `label [#####.....] 12/40 30% 1.5 it/s ETA 00:19 | info`. */
  line(info = ''): string {
    const elapsed = (performance.now() - this.start) / 1000;
    const rate = elapsed > 0 ? (this.done - this.initial) / elapsed : 0;
    const left = this.total - this.done;
    const eta = rate > 0 ? left / rate : NaN;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = this.tty ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    const label = this.opts.label ? `${this.opts.label} ` : '';
    return `${label}${bar}${this.done}/${this.total} ${(frac * 100).toFixed(0)}% ${rate.toFixed(2)} ${this.opts.unit ?? 'it'}/s elapsed ${formatDuration(elapsed)} ETA ${formatDuration(eta)}${info ? ` | ${info}` : ''}`;
  }

  update(done: number, info = ''): void {
    this.done = done;
    const now = performance.now();
    if (this.tty) {
      if (now - this.lastDraw < 100 && done < this.total) return;
      this.lastDraw = now;
      const cols = (this.stream as { columns?: number }).columns ?? 120;
      const text = this.line(info);
      this.stream.write(`\r${text.length > cols - 1 ? text.slice(0, cols - 1) : text}\x1b[K`);
      this.drawn = true;
    } else {
      const every = (this.opts.plainEverySeconds ?? 10) * 1000;
      if (now - this.lastPlain < every && done < this.total) return;
      this.lastPlain = now;
      this.stream.write(this.line(info) + '\n');
    }
  }

  /** Prints a message above the bar (the bar is redrawn on the next update). */
  log(message: string): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[K');
    this.stream.write(message + '\n');
  }

  /** Ends the bar's line (terminal style). */
  finish(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
