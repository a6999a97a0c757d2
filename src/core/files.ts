/**
 * Failures writing files a user keeps (reports, checkpoints, saved models) as XopdError E_WRITE with
 * a message that names the file and says what to fix, from the errno Node reports.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
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

/** Writes a whole file durably: temp file, write, fsync, rename over the target, fsync the folder. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  const fd = openSync(tmp, 'w');
  try {
    try {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true }); // the target is untouched; leave no temp file beside it
    throw err;
  }
  fsyncDir(dir);
}

/** fsyncs a folder, so a rename inside it is durable. */
export function fsyncDir(dir: string): void {
  // Directory fsync makes the rename itself durable; some platforms refuse it, which is harmless.
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* not supported here */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
