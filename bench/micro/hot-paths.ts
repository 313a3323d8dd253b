/**
 * Micro-benchmark of the engine's hot paths (issue 5), each beside a yardstick measured in the same
 * run, on tmpfs (/dev/shm) because disk timings on shared machines swing 2–3×:
 *
 *   walk snapshot of a 100k-file tree with one file touched   vs  find <root> -printf '%s %T@\n'
 *     … and its split: find with the index's format alone, the packed scan (find + reading its
 *     listing), the byte-run diff of two listings
 *   walk prepare (private copy) / release                      vs  cp -a / rm -rf of the same tree
 *   overlay prepare / snapshot / release
 *   layer write of 200 MB in 10 KB files                        vs  single-stream gzip (zlib, same level)
 *     (content: base64 of random bytes by default, like the heavy pair's: what gzip.ts codes with
 *     Z_RLE; --content random: what it stores)
 *     (with this process's peak RSS growth while writing: the layer writer's memory)
 *
 * Usage: node --import tsx bench/micro/hot-paths.ts [--files N] [--mb M] [--reps R] [--only walk,overlay,gzip] [--content base64|random]
 * Prints medians with the load average next to each, and ratios against the yardstick.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import type { ChangeEntry } from '../../src/engine/layer/changeset.js';
import { writeLayer } from '../../src/engine/layer/writer.js';
import { OverlaySnapshotter, WalkSnapshotter, probeOverlay, type Snapshotter } from '../../src/engine/snapshot/index.js';
import { diffPacked, scanPacked } from '../../src/engine/snapshot/stat-index.js';
import type { Digest } from '../../src/image/digest.js';
import type { BlobInfo, BlobStore } from '../../src/store/types.js';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { median } from '../lib/stats.js';
import { flag as arg } from './flags.js';

const FILES = Number(arg('files', '100000'));
const MB = Number(arg('mb', '200'));
const REPS = Number(arg('reps', '3'));
const ONLY = new Set(arg('only', 'walk,overlay,gzip').split(','));
const CONTENT = arg('content', 'base64');
const ROOT = '/dev/shm/stowage-micro';

const load = (): string => loadavg()[0]!.toFixed(1);

interface Sample {
  wall: number;
  cpu: number;
}
function timeSync(f: () => void): Sample {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const c = process.cpuUsage(c0);
  return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
}
async function timeAsync(f: () => Promise<void>): Promise<Sample> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const c = process.cpuUsage(c0);
  return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
}
/** A child's wall and CPU (its own rusage, via GNU time's format-free path: /proc not needed). */
function timeChild(cmd: string, args: string[]): Sample {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const [u, s] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { wall, cpu: (u! + s!) * 1000 };
}
function report(name: string, samples: Sample[], yard?: { name: string; wall: number }): number {
  const w = median(samples.map((s) => s.wall));
  const c = median(samples.map((s) => s.cpu));
  const ratio = yard ? `  = ${(w / yard.wall).toFixed(2)}× ${yard.name}` : '';
  console.log(`${name.padEnd(44)} wall ${w.toFixed(0).padStart(6)} ms  cpu ${c.toFixed(0).padStart(6)} ms  (load ${load()})${ratio}`);
  return w;
}

/** A tree of `n` small files in dirs of 100, like a distro's /usr; generated once, reused. */
function ensureTree(n: number): string {
  const dir = `${ROOT}/tree-${n}`;
  if (existsSync(`${dir}.done`)) return dir;
  rmSync(dir, { recursive: true, force: true });
  for (let i = 0; i < n; i++) {
    const d = `${dir}/d${Math.floor(i / 1000)}/e${Math.floor(i / 100) % 10}`;
    if (i % 100 === 0) mkdirSync(d, { recursive: true });
    writeFileSync(`${d}/f${i}`, `file ${i}\n`);
  }
  writeFileSync(`${dir}.done`, '');
  return dir;
}

class DirStore implements BlobStore {
  private n = 0;
  constructor(readonly dir: string) {}
  pathOf(d: Digest): string {
    return join(this.dir, d.slice(7));
  }
  async has(): Promise<boolean> {
    return false;
  }
  async stat(): Promise<BlobInfo | undefined> {
    return undefined;
  }
  async openRead(d: Digest): Promise<Readable> {
    return createReadStream(join(this.dir, d));
  }
  async write(): Promise<BlobInfo> {
    throw new Error('unused');
  }
  async adopt(tmp: string, info: BlobInfo): Promise<void> {
    renameSync(tmp, join(this.dir, info.digest.slice(7)));
  }
  tempPath(hint = 'tmp'): string {
    return join(this.dir, `.tmp-${hint}-${this.n++}`);
  }
}

/** Waits for detached removals (release) to finish, so they do not load the next measurement. */
async function trashGone(): Promise<void> {
  const left = (): boolean => spawnSync('sh', ['-c', `ls -d ${ROOT}/work-*/.stowage-trash-* 2>/dev/null`]).stdout.length > 0;
  while (left()) await new Promise((r) => setTimeout(r, 100));
}

async function benchSnapshotter(s: Snapshotter, tree: string, yard: { name: string; wall: number }): Promise<void> {
  const prep: Sample[] = [];
  const snap: Sample[] = [];
  const rel: Sample[] = [];
  const ready: Sample[] = [];
  for (let i = 0; i < REPS; i++) {
    let rootfs!: Awaited<ReturnType<Snapshotter['prepare']>>;
    prep.push(await timeAsync(async () => void (rootfs = await s.prepare({ lowers: [tree] }))));
    for (let j = 0; j < 3; j++) {
      // As the stage runner does before each step: overlay's remount after a snapshot runs in the
      // background (beside the layer write) until the next step needs the rootfs.
      if (j > 0) ready.push(await timeAsync(() => rootfs.ready()));
      const target = `${rootfs.path}/d7/e3/f${7345 + j}`;
      const now = Date.now() / 1000 + 5 + i;
      writeFileSync(target, `changed ${i}\n`);
      utimesSync(target, now, now);
      let n = 0;
      snap.push(await timeAsync(async () => void (n = (await rootfs.snapshot()).entries.length)));
      if (n < 1) throw new Error(`${s.kind} snapshot missed the touched file`);
    }
    rel.push(await timeAsync(() => rootfs.release()));
    await trashGone();
  }
  report(`${s.kind} prepare (${FILES} files)`, prep);
  report(`${s.kind} snapshot, 1 file changed`, snap, s.kind === 'walk' ? yard : undefined);
  if (s.kind === 'overlay') report(`${s.kind} ready for the next step (remount)`, ready);
  report(`${s.kind} release`, rel);
}

/** Where a walk snapshot's time goes: find itself, reading its listing, diffing two listings. */
async function benchWalkSplit(tree: string, work: string, yard: { name: string; wall: number }): Promise<void> {
  const finds: Sample[] = [];
  const scans: Sample[] = [];
  const diffs: Sample[] = [];
  const scratch = `${work}/index.tmp`;
  for (let i = 0; i < REPS; i++) {
    finds.push(timeChild('sh', ['-c', `find "$1" -mindepth 1 -printf '%y %m %U %G %s %T@ %C@ %i %P\\0' > "$2"`, 'sh', tree, scratch]));
    const old = await scanPacked(tree, 'find', { scratchFile: scratch });
    const target = `${tree}/d7/e3/f7345`;
    writeFileSync(target, `file 7345\n`);
    let now = old;
    scans.push(await timeAsync(async () => void (now = await scanPacked(tree, 'find', { scratchFile: scratch }))));
    let changed = 0;
    diffs.push(timeSync(() => void (changed = diffPacked(old, now).changed.length)));
    if (changed !== 1) throw new Error(`the packed diff found ${changed} changes, not 1`);
  }
  report("  find with the index's format (CPU: find's)", finds, yard);
  report('  packed scan: find + read listing (CPU: node)', scans, yard);
  report('  diff of two listings', diffs);
}

async function main(): Promise<void> {
  mkdirSync(ROOT, { recursive: true });
  console.log(`# stowage micro-benchmark ${new Date().toISOString()}  cores ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()}  load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const work = mkdtempSync(`${ROOT}/work-`);
  try {
    if (ONLY.has('walk') || ONLY.has('overlay')) {
      const tree = ensureTree(FILES);
      // Warm the dentry/inode caches, then the yardsticks.
      execFileSync('find', [tree, '-printf', '%s %T@\n'], { stdio: 'ignore', maxBuffer: 1 << 30 });
      const finds: Sample[] = [];
      for (let i = 0; i < REPS; i++) finds.push(timeChild('find', [tree, '-printf', '%s %T@\n']));
      const findWall = report(`find -printf '%s %T@' (${FILES} files)`, finds);
      const yard = { name: 'find', wall: findWall };
      if (ONLY.has('walk')) {
        const cps: Sample[] = [];
        const rms: Sample[] = [];
        for (let i = 0; i < REPS; i++) {
          cps.push(timeChild('cp', ['-a', '--reflink=auto', tree, `${work}/cp`]));
          rms.push(timeChild('rm', ['-rf', `${work}/cp`]));
        }
        report('cp -a (yardstick for walk prepare)', cps);
        report('rm -rf (yardstick for walk release)', rms);
        await benchSnapshotter(new WalkSnapshotter({ workRoot: work }), tree, yard);
        await benchWalkSplit(tree, work, yard);
      }
      if (ONLY.has('overlay')) {
        const why = await probeOverlay({ probeDir: work });
        if (why === undefined) await benchSnapshotter(new OverlaySnapshotter({ workRoot: work }), tree, yard);
        else console.log(`overlay: skipped (${why})`);
      }
    }
    if (ONLY.has('gzip')) {
      // MB of content in 10 KB files, like the heavy pair's first RUN.
      const dir = `${work}/random`;
      const content = (): Buffer => (CONTENT === 'random' ? randomBytes(10_000) : Buffer.from(randomBytes(7_500).toString('base64')));
      const count = MB * 100;
      const entries: ChangeEntry[] = [];
      for (let i = 0; i < count; i++) {
        const d = `${dir}/d${Math.floor(i / 1000)}`;
        if (i % 1000 === 0) mkdirSync(d, { recursive: true });
        const p = `${d}/f${i}`;
        writeFileSync(p, content());
        entries.push({ path: p.slice(dir.length + 1), type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, size: 10_000, source: p });
      }
      const catFile = `${work}/all.bin`;
      execFileSync('sh', ['-c', `find ${dir} -type f -exec cat {} + > ${catFile}`]);
      const singles: Sample[] = [];
      for (let i = 0; i < REPS; i++) {
        singles.push(
          await timeAsync(async () => {
            const h = createHash('sha256');
            await pipeline(createReadStream(catFile), createGzip({ level: 6 }), new Writable({ write: (c, _e, cb) => (h.update(c), cb()) }));
          }),
        );
      }
      const single = report(`zlib gzip -6 single stream (${MB} MB ${CONTENT})`, singles);
      const gzipCli: Sample[] = [];
      for (let i = 0; i < REPS; i++) gzipCli.push(timeChild('sh', ['-c', `gzip -6 -c ${catFile} > /dev/null`]));
      report(`gzip(1) -6 (${MB} MB)`, gzipCli);
      for (const level of [6, 1]) {
        const writes: Sample[] = [];
        const peakGrowth: number[] = [];
        for (let i = 0; i < REPS; i++) {
          const out = mkdtempSync(`${work}/store-`);
          const before = process.memoryUsage().rss;
          let peak = before;
          const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
          writes.push(await timeAsync(async () => void (await writeLayer({ entries, deletions: [], opaqueDirs: [] }, new DirStore(out), { gzipLevel: level }))));
          clearInterval(sampler);
          peakGrowth.push((Math.max(peak, process.memoryUsage().rss) - before) / 1048576);
          rmSync(out, { recursive: true, force: true });
        }
        report(`writeLayer level ${level} (${count} files, ${MB} MB)`, writes, { name: 'zlib -6 single', wall: single });
        console.log(`  peak RSS growth while writing: ${peakGrowth.map((m) => m.toFixed(0)).join(', ')} MB (process RSS now ${(process.memoryUsage().rss / 1048576).toFixed(0)} MB)`);
      }
      rmSync(dir, { recursive: true, force: true });
      rmSync(catFile, { force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
