// Real file-system faults for write tests: a tiny tmpfs (ENOSPC when full) and a read-only mount
// (EROFS; chmod does not stop root, a read-only mount does). Mounting needs root with CAP_SYS_ADMIN;
// where that is missing, mountTmpfs returns null and the callers' tests are skipped with a note,
// while the path-through-a-file fault (ENOTDIR) runs everywhere.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Mounted {
  dir: string;
  /** remounts read-only (what is there stays readable) */
  readOnly(): void;
  /** writes filler until the file system is full; returns the bytes written */
  fill(): number;
  unmount(): void;
}

const sh = (args: string[]) => spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });

export function mountTmpfs(sizeKb: number): Mounted | null {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return null;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xopd-tmpfs-'));
  if (sh(['mount', '-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir]).status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  return {
    dir,
    readOnly() {
      const r = sh(['mount', '-o', 'remount,ro', dir]);
      if (r.status !== 0) throw new Error(`remount ro failed: ${r.stderr}`);
    },
    fill() {
      let n = 0;
      const chunk = Buffer.alloc(4096, 7);
      for (let i = 0; ; i++) {
        try {
          writeFileSync(path.join(dir, `filler-${i}`), chunk);
          n += chunk.length;
        } catch {
          // Blocks are gone; fill the last partial block with small writes too.
          try {
            for (let j = 0; j < 4096; j++) writeFileSync(path.join(dir, `filler-${i}-${j}`), 'x');
          } catch {
            /* full */
          }
          return n;
        }
      }
    },
    unmount() {
      sh(['umount', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const canMount = (() => {
  const m = mountTmpfs(64);
  if (!m) return false;
  m.unmount();
  return true;
})();
