// The addon's CUDA code is built for the GPUs it runs on: sm_80 (A100) and sm_90 (H100, H200)
// machine code plus compute_90 PTX (CMakeLists.txt; CUDAARCHS overrides). Read from the built
// xopd.node with cuobjdump where it is installed, else from the fatbin in its .nv_fatbin section.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { info, packageRoot } from '../src/core/native.js';

const addonFile = process.env.XOPD_ADDON ? path.resolve(process.env.XOPD_ADDON) : path.join(packageRoot, 'build', 'Release', 'xopd.node');

/** The architectures CMakeLists.txt builds for (CUDAARCHS, else sm_80 + sm_90 SASS, compute_90 PTX). */
function expected(): { sass: string[]; ptx: string[] } {
  const archs = (process.env.CUDAARCHS ?? '80-real;90-real;90-virtual').split(/[;,]/).filter(Boolean);
  const sass = new Set<string>(), ptx = new Set<string>();
  for (const a of archs) {
    const n = a.replace(/-(real|virtual)$/, '');
    if (!a.endsWith('-virtual')) sass.add(`sm_${n}`);
    if (!a.endsWith('-real')) ptx.add(`compute_${n}`);
  }
  return { sass: [...sass].sort(), ptx: [...ptx].sort() };
}

/** ELF SASS and PTX architectures of every fatbin entry in the file's .nv_fatbin section. */
export function fatbinEntries(file: string): { sass: string[]; ptx: string[] } {
  const b = readFileSync(file);
  // ELF64 little-endian: section headers at e_shoff, names in section e_shstrndx.
  const shoff = Number(b.readBigUInt64LE(0x28)), shentsize = b.readUInt16LE(0x3a), shnum = b.readUInt16LE(0x3c), shstrndx = b.readUInt16LE(0x3e);
  const sec = (i: number) => ({ name: b.readUInt32LE(shoff + i * shentsize), offset: Number(b.readBigUInt64LE(shoff + i * shentsize + 0x18)), size: Number(b.readBigUInt64LE(shoff + i * shentsize + 0x20)) });
  const strtab = sec(shstrndx);
  const nameOf = (off: number) => b.toString('latin1', strtab.offset + off, b.indexOf(0, strtab.offset + off));
  const sass = new Set<string>(), ptx = new Set<string>();
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    if (nameOf(s.name) !== '.nv_fatbin') continue;
    // Containers: magic 0xBA55ED50, u16 version, u16 header size, u64 size of the entries; each entry:
    // u16 kind (1 PTX, 2 ELF), u16, u32 header size, u64 payload size, ..., u32 arch at byte 28.
    for (let c = s.offset; c + 16 <= s.offset + s.size;) {
      if (b.readUInt32LE(c) !== 0xba55ed50) { c += 8; continue; }
      const hsize = b.readUInt16LE(c + 6), fsize = Number(b.readBigUInt64LE(c + 8));
      for (let e = c + hsize; e < c + hsize + fsize;) {
        const kind = b.readUInt16LE(e), ehsize = b.readUInt32LE(e + 4), psize = Number(b.readBigUInt64LE(e + 8)), arch = b.readUInt32LE(e + 28);
        if (kind === 2) sass.add(`sm_${arch}`);
        if (kind === 1) ptx.add(`compute_${arch}`);
        e += ehsize + psize;
      }
      c += hsize + fsize;
    }
  }
  return { sass: [...sass].sort(), ptx: [...ptx].sort() };
}

const hasCuobjdump = spawnSync('sh', ['-c', 'command -v cuobjdump'], { stdio: 'ignore' }).status === 0;
const compiled = existsSync(addonFile) && info().cuda.compiled;
if (!compiled) console.log('cuda-build: skipped, the addon was built without CUDA');

describe.skipIf(!compiled)('the CUDA code in the built addon', () => {
  it(`holds ${expected().sass.join(' + ')} SASS and ${expected().ptx.join(' + ')} PTX (${hasCuobjdump ? 'cuobjdump' : 'its .nv_fatbin section'})`, () => {
    const fromFatbin = fatbinEntries(addonFile);
    console.log(`${path.relative(packageRoot, addonFile)}: SASS ${fromFatbin.sass.join(', ')}; PTX ${fromFatbin.ptx.join(', ')}`);
    expect(fromFatbin).toEqual(expected());
    if (hasCuobjdump) {
      const list = (flag: string, re: RegExp) => [...new Set([...spawnSync('cuobjdump', [flag, addonFile], { encoding: 'utf8' }).stdout.matchAll(re)].map((m) => m[1]!))].sort();
      const sass = list('--list-elf', /\.(sm_\d+)\.cubin/g), ptx = list('--list-ptx', /\.sm_(\d+)\.ptx/g).map((a) => `compute_${a}`);
      console.log(`cuobjdump: SASS ${sass.join(', ')}; PTX ${ptx.join(', ')}`);
      expect({ sass, ptx }).toEqual(expected());
    }
  });
});
