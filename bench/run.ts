/**
 * `npm run bench [-- options]`: stowage beside its peers (Buildah, skopeo) on the same machine,
 * measured the same way — interleaved runs, medians, peak RSS from GNU time, bytes on the wire from a
 * counting proxy in front of a local registry, everything on tmpfs. Writes
 * bench/results/<date>-<commit>[-quick].{json,md} and prints the table. Never part of CI.
 *
 *   --quick          1 run each and smaller sizes (a smoke check, under 3 minutes)
 *   --runs N         runs per tool (default 5, quick 1)
 *   --only a,b       only these workloads (ids: shared-base, snapshot, small, one-file, push-pull, lint-plan)
 *   --stowage PATH   the stowage launcher to measure (default: ./bin/stowage, i.e. dist/)
 *   --build          first compile src/ into bench/work/dist and measure that (leaves dist/ alone)
 *   --no-write       print the table only
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync, rmSync, renameSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, Workload, WorkloadRow } from './lib/context.js';
import { reasonOf, unavailable } from './lib/context.js';
import { renderMarkdown, type BenchMeta, type BenchResults } from './lib/report.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface RunArgs {
  quick: boolean;
  runs?: number;
  only?: string[];
  stowage?: string;
  build: boolean;
  write: boolean;
}

export function parseRunArgs(argv: readonly string[]): RunArgs {
  const out: RunArgs = { quick: false, build: false, write: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--quick':
        out.quick = true;
        break;
      case '--runs': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new Error('--runs takes a positive integer');
        out.runs = n;
        break;
      }
      case '--only':
        out.only = value().split(',').filter(Boolean);
        break;
      case '--stowage':
        out.stowage = resolve(value());
        break;
      case '--build':
        out.build = true;
        break;
      case '--no-write':
        out.write = false;
        break;
      default:
        throw new Error(`unknown option ${a} (see the header of bench/run.ts)`);
    }
  }
  return out;
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function version(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0]!;
  } catch {
    return 'unavailable';
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Compiles src/ into bench/work/dist (git-ignored) with a launcher beside it, the way `npm run
 * build` makes dist/ (precompiled spec validator, bundle); dist/ is left alone. Not incremental:
 * tsc would keep an unchanged main.js, which is then the previous run's bundle.
 */
function privateBuild(log: (m: string) => void): string {
  const work = join(REPO, 'bench', 'work');
  const dist = join(work, 'dist');
  log('compiling src/ into bench/work/dist …');
  rmSync(dist, { recursive: true, force: true });
  try {
    execFileSync(join(REPO, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json', '--outDir', dist], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    // tsc still emits when other files have type errors; what matters is whether the CLI loads.
    log('tsc reported type errors (other work in progress); measuring what it emitted');
  }
  for (const script of ['gen-validator.mjs', 'bundle.mjs']) execFileSync(process.execPath, [join(REPO, 'scripts', script), dist], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  mkdirSync(join(work, 'bin'), { recursive: true });
  copyFileSync(join(REPO, 'bin', 'stowage'), join(work, 'bin', 'stowage'));
  for (const name of ['schema', 'package.json']) {
    if (!existsSync(join(work, name))) symlinkSync(join('..', '..', name), join(work, name));
  }
  return join(work, 'bin', 'stowage');
}

/** A private directory on tmpfs (disk timings here swing 2–3×); the disk only if there is none. */
function makeWorkDir(): { dir: string; tmpfs: boolean } {
  for (const candidate of ['/dev/shm']) {
    try {
      return { dir: mkdtempSync(join(candidate, 'stowage-bench-')), tmpfs: true };
    } catch {
      // not there or not writable
    }
  }
  return { dir: mkdtempSync(join(REPO, 'bench', 'work', 'run-')), tmpfs: false };
}

async function loadWorkloads(): Promise<Workload[]> {
  const [{ sharedBase }, { snapshotPair }, { smallCase }, { oneFileChange }, { pushPull }, { lintPlanWorkload }] = await Promise.all([
    import('./workloads/shared-base.js'),
    import('./workloads/snapshot.js'),
    import('./workloads/small.js'),
    import('./workloads/one-file.js'),
    import('./workloads/push-pull.js'),
    import('./lint-plan.js'),
  ]);
  return [sharedBase, snapshotPair, smallCase, oneFileChange, pushPull, lintPlanWorkload];
}

async function main(argv: string[]): Promise<number> {
  const args = parseRunArgs(argv);
  const started = Date.now();
  const log = (m: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${m}\n`);
  const stowage = args.stowage ?? (args.build ? privateBuild(log) : join(REPO, 'bin', 'stowage'));
  const distFor = join(dirname(dirname(stowage)), 'dist');
  const { dir: workDir, tmpfs } = makeWorkDir();
  // Every temp file of the harness, the registry helper and the tools lands in workDir.
  const tmp = join(workDir, 'tmp');
  mkdirSync(tmp);
  process.env.TMPDIR = tmp;
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const warnings: string[] = [];
  if (!args.build && existsSync(distFor) && newestMtime(join(REPO, 'src')) > newestMtime(distFor)) {
    warnings.push(`${distFor} is older than src/ — run 'npm run build' or pass --build to measure the current code`);
    log(`warning: ${warnings[warnings.length - 1]}`);
  }
  const runs = args.runs ?? (args.quick ? 1 : 5);
  const rows: WorkloadRow[] = [];
  try {
    const { busyboxLayout } = await import('../test/helpers/busybox-image.js');
    log('building the busybox base image with stowage …');
    const base = await busyboxLayout();
    const ctx: BenchContext = {
      quick: args.quick,
      runs,
      signal: controller.signal,
      workDir: join(workDir, 'w'),
      stowage,
      base: { dir: base.dir, tag: base.tag },
      env: { ...process.env, TMPDIR: tmp, LC_ALL: 'C', STOWAGE_CACHE_DIR: join(workDir, 'default-cache') },
      log,
    };
    const workloads = (await loadWorkloads()).filter((w) => !args.only || args.only.includes(w.id));
    for (const w of workloads) {
      log(`workload ${w.id}: ${w.title}`);
      try {
        rows.push(...(await w.run(ctx)));
      } catch (e) {
        if (controller.signal.aborted) throw e;
        log(`workload ${w.id} failed: ${reasonOf(e)}`);
        rows.push({ id: w.id, title: w.title, params: {}, stowage: unavailable('stowage', `workload failed: ${reasonOf(e)}`), notes: [] });
      }
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true, maxRetries: 3 });
  }

  const commit = git(['rev-parse', '--short', 'HEAD']);
  const meta: BenchMeta = {
    date: new Date().toISOString(),
    commit,
    dirty: git(['status', '--porcelain', '--', 'src']) !== '',
    quick: args.quick,
    runs,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', memoryGiB: Math.round(totalmem() / 1024 ** 3), kernel: release(), tmpfs },
    versions: {
      node: process.version,
      stowage: version(stowage, ['--version']),
      buildah: version('/usr/bin/buildah', ['--version']),
      skopeo: version('/usr/bin/skopeo', ['--version']),
      bwrap: version('/usr/bin/bwrap', ['--version']),
      registry: version('/usr/bin/docker-registry', ['--version']),
    },
    durationSeconds: Math.round((Date.now() - started) / 1000),
  };
  const results: BenchResults = { meta, rows };
  const markdown = renderMarkdown(results);
  process.stdout.write(`\n${markdown}`);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  if (args.write) {
    const dir = join(REPO, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const name = `${meta.date.slice(0, 10)}-${commit}${args.quick ? '-quick' : ''}${args.only ? `-${args.only.join('+')}` : ''}`;
    // Temp name then rename: an interrupted write never leaves a results file that looks complete.
    const writeAtomic = (path: string, text: string) => {
      writeFileSync(`${path}.tmp`, text);
      renameSync(`${path}.tmp`, path);
    };
    writeAtomic(join(dir, `${name}.json`), JSON.stringify({ ...results, warnings }, null, 2) + '\n');
    writeAtomic(join(dir, `${name}.md`), markdown);
    log(`wrote bench/results/${name}.json and .md`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${reasonOf(e)}\n`);
    process.exitCode = 1;
  },
);
