/**
 * Failures writing files a user keeps (reports, checkpoints, saved models) as XopdError E_WRITE with
 * a message that names the file and says what to fix, from the errno Node reports.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, XopdError } from './errors.js';

const ADVICE: Record<string, string> = {
  EROFS: 'the file system is read-only: choose a writable folder',
  EACCES: 'permission denied: make the folder writable or choose another',
  EPERM: 'permission denied: make the folder writable or choose another',
  ENOSPC: 'the disk is full: free space or choose a folder on another disk',
  EDQUOT: 'the disk quota is exhausted: free space or choose another folder',
  ENOTDIR: 'a part of the path is a file, not a folder: choose another path',
  EEXIST: 'a part of the path is a file, not a folder: choose another path',
  EISDIR: 'the path is a folder: choose a file name',
  ENAMETOOLONG: 'the path is too long: choose a shorter one',
  EMFILE: 'too many open files: raise the limit (ulimit -n)',
};

/** What to do about a failed write, from its errno ('see the cause' when unknown). */
export function writeAdvice(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return (typeof code === 'string' && ADVICE[code]) || 'see the cause';
}

/** Wraps a failed write of `file`; existing data is untouched (writes go to a temporary name first). */
export function writeFailure(what: string, file: string, err: unknown): XopdError {
  const advice = writeAdvice(err);
  const msg = err instanceof Error ? err.message : String(err);
  return new XopdError(ErrorCode.WRITE, `cannot write ${what} ${file}: ${advice} (${msg}); nothing already there was replaced`, { cause: err });
}

/**
 * Checks, before long work, that `target` (a file or folder to be written later) can be created:
 * makes its parent folder and writes and removes a small file there. Throws writeFailure otherwise,
 * so a bad --out is reported in a second rather than after the run.
 */
export function probeWritable(what: string, target: string): void {
  const parent = path.dirname(path.resolve(target));
  const probe = path.join(parent, `.xopd-probe-${process.pid}-${Date.now()}`);
  try {
    mkdirSync(parent, { recursive: true });
    writeFileSync(probe, 'xopd');
  } catch (err) {
    throw writeFailure(what, target, err);
  } finally {
    try {
      rmSync(probe, { force: true });
    } catch {
      // nothing was created (the parent is not a folder)
    }
  }
}
