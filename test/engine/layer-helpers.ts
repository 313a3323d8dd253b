/**
 * Test support for the layer/unpack/snapshot tests: a small directory-backed BlobStore (the real
 * FsBlobStore lives with another engineer; this one implements the same interface contract), temp
 * dirs, and a tar listing through GNU tar as an independent reader.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, promises as fsp, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Digest } from '../../src/image/digest.js';
import { digestHex } from '../../src/image/digest.js';
import type { BlobInfo, BlobStore } from '../../src/store/types.js';

export class DirBlobStore implements BlobStore {
  private n = 0;
  constructor(readonly dir: string) {}
  pathOf(d: Digest): string {
    return join(this.dir, digestHex(d));
  }
  async has(d: Digest): Promise<boolean> {
    return (await this.stat(d)) !== undefined;
  }
  async stat(d: Digest): Promise<BlobInfo | undefined> {
    try {
      return { digest: d, size: statSync(this.pathOf(d)).size };
    } catch {
      return undefined;
    }
  }
  async openRead(d: Digest): Promise<Readable> {
    return createReadStream(this.pathOf(d));
  }
  async write(): Promise<BlobInfo> {
    throw new Error('not used by these tests');
  }
  async adopt(tempPath: string, info: BlobInfo): Promise<void> {
    const actual = `sha256:${createHash('sha256').update(readFileSync(tempPath)).digest('hex')}`;
    if (actual !== info.digest) throw new Error(`adopt: digest mismatch ${actual} != ${info.digest}`);
    if (statSync(tempPath).size !== info.size) throw new Error('adopt: size mismatch');
    renameSync(tempPath, this.pathOf(info.digest));
  }
  tempPath(hint = 'tmp'): string {
    return join(this.dir, `.tmp-${hint}-${process.pid}-${this.n++}`);
  }
}

export function tempDir(prefix: string): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), `stowage-${prefix}-`));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** `tar -tvf` lines of a (possibly gzipped) tar blob, via GNU tar. */
export function gnuTarList(blobPath: string): string[] {
  return execFileSync('tar', ['--numeric-owner', '-tvf', blobPath], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
}

export async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export { fsp };
