/** Temp build contexts and rootfs directories for the context/copy tests (real files, cleaned up). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import type { CopyOptions } from '../../src/engine/copy/copy.js';

export interface Sandbox {
  /** Parent temp dir (outside both trees; a stand-in for "the host"). */
  base: string;
  ctx: string;
  rootfs: string;
}

export function sandbox(t: TestContext): Sandbox {
  const base = mkdtempSync(join(tmpdir(), 'stowage-copy-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const ctx = join(base, 'ctx');
  const rootfs = join(base, 'rootfs');
  mkdirSync(ctx);
  mkdirSync(rootfs);
  return { base, ctx, rootfs };
}

/** Writes files (path → content) under dir, creating parents. */
export function writeTree(dir: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
}

export function copyOpts(s: Sandbox, over: Partial<CopyOptions> & Pick<CopyOptions, 'sources' | 'dest'>): CopyOptions {
  return {
    rootfs: s.rootfs,
    sourceRoot: s.ctx,
    workdir: '/',
    parents: false,
    excludes: [],
    link: false,
    fromContext: true,
    signal: AbortSignal.timeout(30_000),
    ...over,
  };
}

export const mode = (m: number) => (m & 0o7777).toString(8);
