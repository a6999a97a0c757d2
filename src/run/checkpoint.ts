/**
 * Checkpoints that survive a kill at any instant. A checkpoint is a folder
 * `<root>/step-<NNNNNNNN>/` holding what the caller writes, `state.json`, and `manifest.json`
 * (size and SHA-256 of every file, written last). It is built in a temp folder, every file and the
 * folder are fsynced, and only then renamed into place; the `latest` pointer is replaced (temp file,
 * fsync, rename) after that. Resuming reads `latest`, verifies the manifest, and falls back to the
 * newest checkpoint that verifies when the pointer or its target is damaged; leftover temp folders
 * are removed.
 */
import { createHash } from 'node:crypto';
import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync,
} from 'node:fs';
import path from 'node:path';
import { ErrorCode, XopdError } from '../core/errors.js';
import { fsyncDir, writeAdvice, writeFileAtomic } from '../core/files.js';

const MANIFEST = 'manifest.json';
const STATE = 'state.json';
const LATEST = 'latest';
const NAME = /^step-(\d{8,})$/;

export interface Checkpoint<S = unknown> {
  step: number;
  dir: string;
  state: S;
}

interface Manifest {
  format: 'xopd-checkpoint/1';
  step: number;
  files: Array<{ path: string; bytes: number; sha256: string }>;
}

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function fsyncTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) fsyncTree(p);
    else if (e.isFile()) {
      const fd = openSync(p, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
  }
  fsyncDir(dir);
}

/** Checks a checkpoint folder against its manifest; returns why it is unusable, or null when complete. */
export function verifyCheckpoint(dir: string): string | null {
  const mf = path.join(dir, MANIFEST);
  if (!existsSync(mf)) return 'no manifest.json (the write did not finish)';
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(mf, 'utf8')) as Manifest;
  } catch (err) {
    return `manifest.json does not parse (${(err as Error).message})`;
  }
  if (m?.format !== 'xopd-checkpoint/1' || !Array.isArray(m.files)) return 'manifest.json is not an xopd checkpoint manifest';
  for (const f of m.files) {
    const p = path.join(dir, f.path);
    if (!existsSync(p)) return `${f.path} is missing`;
    if (statSync(p).size !== f.bytes) return `${f.path} has ${statSync(p).size} bytes, the manifest says ${f.bytes}`;
    if (sha256(p) !== f.sha256) return `${f.path} does not match its SHA-256`;
  }
  if (!m.files.some((f) => f.path === STATE)) return 'state.json is missing from the manifest';
  return null;
}

export class CheckpointStore {
  constructor(readonly root: string, readonly keep = 3) {
    if (!Number.isInteger(keep) || keep < 1) throw new XopdError(ErrorCode.ARG_RANGE, `keep must be an integer >= 1, got ${keep}`);
  }

  /**
   * Writes checkpoint `step`: `write(dir)` fills a fresh temp folder, then state.json and the
   * manifest are added, everything is fsynced, the folder is renamed into place and `latest` is
   * pointed at it. Older checkpoints beyond `keep` are removed afterwards.
   */
  async save<S>(step: number, write: (dir: string) => Promise<void> | void, state: S): Promise<string> {
    if (!Number.isInteger(step) || step < 0) throw new XopdError(ErrorCode.ARG_RANGE, `step must be an integer >= 0, got ${step}`);
    const final = path.join(this.root, checkpointName(step));
    const failed = (err: unknown, after = ''): XopdError => err instanceof XopdError ? err
      : new XopdError(ErrorCode.CHECKPOINT, `could not write checkpoint ${final}${after}: ${writeAdvice(err)} (${(err as Error).message}); the earlier checkpoints are intact`, { cause: err });
    try {
      mkdirSync(this.root, { recursive: true });
    } catch (err) {
      throw failed(err);
    }
    if (existsSync(final) && verifyCheckpoint(final) === null) {
      // Same step saved again (an interrupt right after a save): the complete one stays.
      this.pointLatest(step);
      return final;
    }
    const tmp = path.join(this.root, `.tmp-${checkpointName(step)}-${process.pid}-${Date.now().toString(36)}`);
    try {
      mkdirSync(tmp); // not recursive: the root exists, and a recursive mkdir reports EROFS as ENOENT
      await write(tmp);
      writeFileAtomic(path.join(tmp, STATE), JSON.stringify({ step, ...state }, null, 2) + '\n');
      const files = listFiles(tmp).filter((f) => f !== MANIFEST).map((f) => ({ path: f, bytes: statSync(path.join(tmp, f)).size, sha256: sha256(path.join(tmp, f)) }));
      const manifest: Manifest = { format: 'xopd-checkpoint/1', step, files };
      writeFileAtomic(path.join(tmp, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
      fsyncTree(tmp);
      if (existsSync(final)) rmSync(final, { recursive: true, force: true }); // an incomplete one
      renameSync(tmp, final);
      fsyncDir(this.root);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw failed(err);
    }
    try {
      this.pointLatest(step);
    } catch (err) {
      // The checkpoint itself is complete; resume finds it as the newest that verifies.
      throw failed(err, " (complete, but 'latest' was not updated)");
    }
    this.prune();
    return final;
  }

  private pointLatest(step: number): void {
    writeFileAtomic(path.join(this.root, LATEST), JSON.stringify({ step, dir: checkpointName(step) }) + '\n');
  }

  /** Steps of the checkpoint folders present (complete or not), ascending. */
  steps(): number[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root).map((n) => NAME.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
  }

  private prune(): void {
    const latest = this.readPointer();
    const steps = this.steps();
    for (const s of steps.slice(0, Math.max(0, steps.length - this.keep))) {
      if (s === latest) continue;
      rmSync(path.join(this.root, checkpointName(s)), { recursive: true, force: true });
    }
  }

  private readPointer(): number | undefined {
    try {
      const v = JSON.parse(readFileSync(path.join(this.root, LATEST), 'utf8')) as { step?: unknown };
      return typeof v.step === 'number' && Number.isInteger(v.step) ? v.step : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The last complete checkpoint, or null when there is none. Removes temp folders a killed writer
   * left behind. `warn` hears about damaged checkpoints that were skipped.
   */
  latest<S = Record<string, unknown>>(warn?: (msg: string) => void): Checkpoint<S> | null {
    if (!existsSync(this.root)) return null;
    for (const n of readdirSync(this.root)) {
      if (n.startsWith('.tmp-') || /^\.latest\.tmp-/.test(n)) rmSync(path.join(this.root, n), { recursive: true, force: true });
    }
    const pointed = this.readPointer();
    const order = this.steps().reverse();
    // The pointer wins when it verifies; otherwise the newest checkpoint that does.
    if (pointed !== undefined) order.unshift(pointed);
    const tried = new Set<number>();
    for (const step of order) {
      if (tried.has(step)) continue;
      tried.add(step);
      const dir = path.join(this.root, checkpointName(step));
      if (!existsSync(dir)) {
        warn?.(`checkpoint ${checkpointName(step)} named by 'latest' does not exist`);
        continue;
      }
      const why = verifyCheckpoint(dir);
      if (why !== null) {
        warn?.(`skipping checkpoint ${dir}: ${why}`);
        continue;
      }
      const state = JSON.parse(readFileSync(path.join(dir, STATE), 'utf8')) as S & { step: number };
      return { step: state.step, dir, state };
    }
    return null;
  }
}
