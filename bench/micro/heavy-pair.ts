/**
 * The heavy pair (issue 5) through `stowage executor` beside the same two commands in a plain bwrap
 * sandbox, interleaved, on tmpfs: RUN creates N files / BYTES of base64-random content, RUN deletes
 * half, modifies ~1,000, adds one. Overhead = stowage − commands alone. Also the small case
 * (FROM busybox, RUN, COPY, RUN). Uses the bench harness's scripts and a private build of src/.
 *
 * Usage: node --import tsx bench/micro/heavy-pair.ts [--files 20000] [--bytes 200000000] [--reps 3] [--snapshotter auto|walk|overlay] [--profile DIR]
 *        [--node-flags '--max-semi-space-size=2 --liftoff-only']   (V8 flags for the stowage runs: memory experiments)
 *        [--variant NAME='FLAGS']…   several flag sets compared in one interleaved run (replaces --node-flags);
 *                                     FLAGS `launcher` runs bin/stowage as a program, so its shebang's flags apply
 * The private build is bundled like `npm run build` does, so it loads what an installed stowage loads.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { bwrapArgs, snapshotDockerfile } from '../workloads/snapshot.js';
import { writeScripts } from '../workloads/scripts.js';
import { pushBusyboxBase } from './base-image.js';
import { busyboxLayout } from '../../test/helpers/busybox-image.js';
import { shebangNodeFlags } from './launcher.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { timedCommand, type Timing } from './timed.js';
import { median } from '../lib/stats.js';
import { flag as arg, flags as all } from './flags.js';

const FILES = Number(arg('files', '20000'));
const BYTES = Number(arg('bytes', '200000000'));
const REPS = Number(arg('reps', '3'));
const SNAPSHOTTER = arg('snapshotter', 'auto');
const REPO = resolve(import.meta.dirname, '../..');
const ROOT = '/dev/shm/stowage-micro';

const timed = (cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Timing> => timedCommand(cmd, args, { env });
const load = (): string => loadavg()[0]!.toFixed(1);


function privateBuild(dir: string): string {
  try {
    execFileSync(join(REPO, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist')], { cwd: REPO, stdio: 'ignore' });
  } catch {
    // other engineers' work in progress may not type-check; tsc still emits
  }
  execFileSync(process.execPath, [join(REPO, 'scripts/gen-validator.mjs'), join(dir, 'dist')], { cwd: REPO, stdio: 'ignore' });
  execFileSync(process.execPath, [join(REPO, 'scripts/bundle.mjs'), join(dir, 'dist')], { cwd: REPO, stdio: 'ignore' });
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync(join(REPO, 'bin/stowage'), join(dir, 'bin/stowage'));
  for (const n of ['schema', 'package.json', 'node_modules']) if (!existsSync(join(dir, n))) symlinkSync(join(REPO, n), join(dir, n));
  return join(dir, 'bin/stowage');
}

async function main(): Promise<void> {
  mkdirSync(ROOT, { recursive: true });
  const work = mkdtempSync(`${ROOT}/pair-`);
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: work };
  // --profile DIR: V8 CPU profiles of the stowage runs (open in Chrome devtools).
  const profile = arg('profile', '') === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${resolve(arg('profile', ''))}`];
  const variants = (all('variant').length > 0 ? all('variant') : [`default=${arg('node-flags', '')}`]).map((v) => {
    const eq = v.indexOf('=');
    const flags = v.slice(eq + 1).trim();
    return { name: v.slice(0, eq), launcher: flags === 'launcher', flags: flags === 'launcher' ? [] : flags.split(' ').filter((f) => f !== '') };
  });
  process.env.TMPDIR = work;
  const registry = await startRegistry();
  try {
    const stowage = privateBuild(join(work, 'build'));
    const ref = `${registry.host}/base:1`;
    await pushBusyboxBase(ref);
    const template = join(work, 'template');
    const base = await busyboxLayout();
    execFileSync('umoci', ['raw', 'unpack', '--image', `${base.dir}:${base.tag}`, template]);
    const ctx = join(work, 'context');
    mkdirSync(ctx);
    await writeScripts(ctx);
    mkdirSync(join(template, 'bench'));
    await writeScripts(join(template, 'bench'));
    writeFileSync(join(ctx, 'Dockerfile'), snapshotDockerfile(FILES, BYTES));
    writeFileSync(join(ctx, 'Dockerfile.small'), 'ARG BASE\nFROM ${BASE}\nRUN echo one > /one\nCOPY gen.sh /gen.sh\nRUN echo two > /two\n');
    const exec = async (variant: (typeof variants)[number], dockerfile: string, i: number) => {
      const args = ['executor', '--dockerfile', join(ctx, dockerfile), '--context', ctx, '--build-arg', `BASE=${ref}`, '--destination', `oci:${work}/out-${i}:x`, '--cache-dir', `${work}/cache-${i}`, '--insecure-registry', registry.host, '--snapshotter', SNAPSHOTTER];
      try {
        // (Node 20 refuses --cpu-prof in NODE_OPTIONS: a profiled launcher run is node + the shebang's flags.)
        if (variant.launcher) return await (profile.length > 0 ? timed(process.execPath, [...shebangNodeFlags(stowage), ...profile, stowage, ...args], env) : timed(stowage, args, env));
        return await timed(process.execPath, [...profile, ...variant.flags, stowage, ...args], env);
      } finally {
        rmSync(`${work}/out-${i}`, { recursive: true, force: true });
        rmSync(`${work}/cache-${i}`, { recursive: true, force: true });
      }
    };
    console.log(`# heavy pair ${FILES} files / ${BYTES / 1e6} MB, snapshotter ${SNAPSHOTTER}${profile.length > 0 ? `, node ${profile.join(' ')}` : ''}, variants ${variants.map((v) => `${v.name}=[${v.launcher ? 'launcher' : v.flags.join(' ')}]`).join(' ')}, ${new Date().toISOString()}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    type Sample = Awaited<ReturnType<typeof timed>>;
    const st = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
    const small = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
    const bw: number[] = [];
    for (let i = 0; i < REPS; i++) {
      const rootfs = join(work, `rootfs-${i}`);
      execFileSync('cp', ['-a', template, rootfs]);
      const g = await timed('bwrap', bwrapArgs(rootfs, ['/bin/sh', '/bench/gen.sh', String(FILES), String(BYTES), '/data']), env);
      const m = await timed('bwrap', bwrapArgs(rootfs, ['/bin/sh', '/bench/mutate.sh', '/data']), env);
      bw.push(g.wall + m.wall);

      rmSync(rootfs, { recursive: true, force: true });
      for (const [k, v] of variants.entries()) {
        const s = await exec(v, 'Dockerfile', i * 10 + k);
        st.get(v.name)!.push(s);
        // (bwrap's own rusage does not include the sandboxed commands' CPU, so only wall is compared.)
        console.log(`run ${i} ${v.name}: commands alone ${bw[i]!.toFixed(0)} ms, stowage ${s.wall.toFixed(0)} ms (cpu ${s.cpu.toFixed(0)} ms, peak RSS ${s.rssMb.toFixed(0)} MB), load ${load()}`);
        small.get(v.name)!.push(await exec(v, 'Dockerfile.small', 1000 + i * 10 + k));
      }
    }
    const b = median(bw);
    for (const v of variants) {
      const runs = st.get(v.name)!;
      const s = median(runs.map((x) => x.wall));
      const sm = small.get(v.name)!;
      console.log(
        `${v.name} median: commands alone ${b.toFixed(0)} ms; stowage ${s.toFixed(0)} ms; overhead ${(s - b).toFixed(0)} ms; CPU ${median(runs.map((x) => x.cpu)).toFixed(0)} ms; ` +
          `peak RSS ${median(runs.map((x) => x.rssMb)).toFixed(0)} MB (${runs.map((x) => x.rssMb.toFixed(0)).join(' ')}) (load ${load()})`,
      );
      console.log(`${v.name} small case (FROM busybox, RUN, COPY, RUN): median ${median(sm.map((x) => x.wall)).toFixed(0)} ms wall, ${median(sm.map((x) => x.cpu)).toFixed(0)} ms CPU, peak RSS ${median(sm.map((x) => x.rssMb)).toFixed(0)} MB`);
    }
  } finally {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
