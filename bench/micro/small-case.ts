/**
 * Issue 5's small case (FROM busybox, RUN, COPY, RUN; cold: a fresh cache each run, so the base is
 * pulled and unpacked every time) through `stowage executor`, for finding where its fixed cost goes.
 * Several builds can be compared in one interleaved run (A, B, A, B, …), which is the only fair
 * comparison on a shared machine; CPU (user+sys, children included) and peak RSS come from GNU time.
 *
 * Usage: node --import tsx bench/micro/small-case.ts [--reps 10] [--build NAME=DIR]… [--node-flags '…']
 *          [--profile DIR] [--strace DIR]
 *   --build NAME=DIR   a stowage install (DIR/bin/stowage, built with `npm run build`); repeatable;
 *                      default: this checkout. NAME=DIR!VAR runs it without the environment variable VAR. Keep a copy of dist/ to compare against later:
 *                      mkdir -p /dev/shm/base/bin && cp -a dist /dev/shm/base/ && cp bin/stowage /dev/shm/base/bin/
 *                      && ln -s "$PWD"/{node_modules,package.json,schema} /dev/shm/base/
 *   --node-flags '…'   run `node FLAGS DIR/bin/stowage` instead of the launcher as a program (whose
 *                      shebang carries stowage's own node flags)
 *   --without-env NAME the stowage runs get the environment without NAME (e.g. NODE_EXTRA_CA_CERTS,
 *                      which makes Node parse its whole CA store at start); repeatable
 *   --profile DIR      a V8 CPU profile per run (--cpu-prof), to open in Chrome devtools
 *   --strace DIR       `strace -f -tt -e trace=execve,clone,clone3,fsync,fdatasync,mount,wait4` per run
 *   --strace-events L  the syscalls strace shows instead (e.g. openat,execve)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pushBusyboxBase } from './base-image.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { shebangNodeFlags } from './launcher.js';
import { timedCommand, type Timing } from './timed.js';
import { median } from '../lib/stats.js';
import { flag as arg, flags as all } from './flags.js';


const REPS = Number(arg('reps', '10'));
const REPO = resolve(import.meta.dirname, '../..');
const ROOT = '/dev/shm/stowage-micro';
// NAME=DIR, or NAME=DIR!VAR to run that build without the environment variable VAR.
const builds = (all('build').length > 0 ? all('build') : [`checkout=${REPO}`]).map((b) => {
  const eq = b.indexOf('=');
  const [dir, ...unset] = b.slice(eq + 1).split('!');
  return { name: b.slice(0, eq), bin: join(resolve(dir!), 'bin/stowage'), unset };
});
const nodeFlags = arg('node-flags', '').split(' ').filter((f) => f !== '');
const profileDir = arg('profile', '');
const straceDir = arg('strace', '');
const straceEvents = arg('strace-events', 'execve,clone,clone3,fsync,fdatasync,mount,wait4');

const timed = (cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Timing> => timedCommand(cmd, args, { env });

type Sample = Timing;


async function main(): Promise<void> {
  mkdirSync(ROOT, { recursive: true });
  const work = mkdtempSync(`${ROOT}/small-`);
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: work };
  for (const name of all('without-env')) delete env[name];
  process.env.TMPDIR = work;
  const registry = await startRegistry();
  try {
    const ref = `${registry.host}/base:1`;
    await pushBusyboxBase(ref);
    const ctx = join(work, 'context');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'hello.txt'), 'hello\n');
    writeFileSync(join(ctx, 'Dockerfile'), 'ARG BASE\nFROM ${BASE}\nRUN echo one > /one\nCOPY hello.txt /hello.txt\nRUN echo two > /two\n');
    const run = async (build: (typeof builds)[number], tag: string): Promise<Sample> => {
      const bin = build.bin;
      const runEnv = { ...env };
      for (const name of build.unset) delete runEnv[name];
      const out = join(work, `out-${tag}`);
      const cache = join(work, `cache-${tag}`);
      const executor = ['executor', '--dockerfile', join(ctx, 'Dockerfile'), '--context', ctx, '--build-arg', `BASE=${ref}`, '--destination', `oci:${out}:small`, '--cache-dir', cache, '--insecure-registry', registry.host];
      // As users run it: the launcher is executed, so its shebang's node flags apply. --node-flags
      // runs node with those flags instead (the shebang is then not read); --profile runs node with
      // the shebang's flags plus --cpu-prof (Node 20 refuses --cpu-prof in NODE_OPTIONS).
      const profile = profileDir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${resolve(profileDir)}`, `--cpu-prof-name=${tag}.cpuprofile`];
      const [file, ...argv] =
        nodeFlags.length > 0
          ? [process.execPath, ...nodeFlags, ...profile, bin, ...executor]
          : profile.length > 0
            ? [process.execPath, ...shebangNodeFlags(bin), ...profile, bin, ...executor]
            : [bin, ...executor];
      try {
        if (straceDir !== '') {
          mkdirSync(straceDir, { recursive: true });
          return await timed('strace', ['--seccomp-bpf', '-f', '-tt', '-o', join(resolve(straceDir), `${tag}.strace`), '-e', `trace=${straceEvents}`, file!, ...argv], runEnv);
        }
        return await timed(file!, argv, runEnv);
      } finally {
        rmSync(out, { recursive: true, force: true });
        rmSync(cache, { recursive: true, force: true });
      }
    };
    console.log(`# small case, ${REPS} interleaved runs of ${builds.map((b) => b.name).join(', ')}${nodeFlags.length > 0 ? `, node ${nodeFlags.join(' ')}` : ''}${all('without-env').map((n) => `, without ${n}`).join('')}, ${new Date().toISOString()}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    // One unmeasured run each: page cache and the registry's first answers.
    for (const b of builds) await run(b, `${b.name}-warmup`);
    const samples = new Map<string, Sample[]>(builds.map((b) => [b.name, []]));
    for (let i = 0; i < REPS; i++) {
      for (const b of builds) samples.get(b.name)!.push(await run(b, `${b.name}-${i}`));
    }
    for (const b of builds) {
      const s = samples.get(b.name)!;
      console.log(
        `${b.name}: wall median ${median(s.map((x) => x.wall)).toFixed(0)} ms (${s.map((x) => x.wall.toFixed(0)).join(' ')}), ` +
          `CPU median ${median(s.map((x) => x.cpu)).toFixed(0)} ms, peak RSS median ${median(s.map((x) => x.rssMb)).toFixed(1)} MiB`,
      );
    }
    console.log(`# load at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
