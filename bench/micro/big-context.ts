/**
 * Issue #7 with a context the size of a real service's: `FROM scratch` + `COPY . /app` over a
 * context of FILES small files (random content), built cold, rebuilt unchanged, and rebuilt after
 * one file changed — stowage (`build` of a one-image spec, to an OCI layout) beside
 * `buildah bud --layers` (its layer cache, vfs storage), interleaved, on /dev/shm. Prints medians and
 * each tool's warm/cold and edited/cold ratios.
 *
 * Usage: node --import tsx bench/micro/big-context.ts [--files 20000] [--bytes 2500] [--reps 3] [--stowage PATH]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { timedCommand, type Timing } from './timed.js';
import { median } from '../lib/stats.js';
import { flag as arg } from './flags.js';

const FILES = Number(arg('files', '20000'));
const BYTES = Number(arg('bytes', '2500'));
const REPS = Number(arg('reps', '3'));
const STOWAGE = resolve(arg('stowage', join(import.meta.dirname, '../../bin/stowage')));
const BUILDAH = '/usr/bin/buildah';

type Phase = 'cold' | 'warm' | 'edited';
const fmt = (t: Timing) => `${t.wall.toFixed(0)} ms wall, ${t.cpu.toFixed(0)} ms CPU, ${t.rssMb.toFixed(0)} MB RSS`;
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

function writeContext(dir: string): void {
  const perDir = 200;
  for (let i = 0; i < FILES; i++) {
    const sub = join(dir, 'src', `d${Math.floor(i / perDir)}`);
    if (i % perDir === 0) mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i % perDir}.js`), randomBytes(BYTES));
  }
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /app\n');
}

async function main(): Promise<void> {
  const root = mkdtempSync('/dev/shm/stowage-bigctx-');
  const env = { ...process.env, TMPDIR: root, CI: '1' };
  const results: Record<string, Record<Phase, Timing[]>> = {
    stowage: { cold: [], warm: [], edited: [] },
    'buildah bud --layers': { cold: [], warm: [], edited: [] },
  };
  try {
    const context = join(root, 'context');
    writeContext(context);
    writeFileSync(join(root, 'stowage.yaml'), `version: 1\nimages:\n  big:\n    context: context\n    destinations: [oci:out/big]\n`);
    console.log(`# big context: ${FILES} files of ${BYTES} B, ${REPS} rounds, ${new Date().toISOString()}, load ${load()}`);
    const edited = join(context, 'src', 'd0', 'f0.js');
    for (let r = 0; r < REPS; r++) {
      writeFileSync(edited, 'original\n');
      // stowage: a fresh cache per round.
      const cache = join(root, `cache-${r}`);
      const stowage = () => timedCommand(STOWAGE, ['build', '--cache-dir', cache, '--progress', 'plain'], { env, cwd: root });
      // Buildah: fresh storage per round; the second bud finds its layer by the context's content.
      const store = join(root, `buildah-${r}`);
      const g = ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs'];
      const buildah = () => timedCommand(BUILDAH, [...g, 'bud', '--isolation', 'chroot', '--quiet', '--layers', '-t', 'localhost/big:1', context], { env, cwd: root });
      for (const [tool, run] of [['stowage', stowage], ['buildah bud --layers', buildah]] as const) {
        writeFileSync(edited, 'original\n');
        const t = results[tool]!;
        t.cold.push(await run());
        t.warm.push(await run());
        writeFileSync(edited, `changed in round ${r}\n`);
        t.edited.push(await run());
      }
      rmSync(cache, { recursive: true, force: true });
      try {
        execFileSync(BUILDAH, [...g, 'rm', '--all'], { stdio: 'ignore' });
      } catch {
        // nothing to remove
      }
      rmSync(store, { recursive: true, force: true });
      rmSync(join(root, 'out'), { recursive: true, force: true });
      console.log(`round ${r + 1} done, load ${load()}`);
    }
    for (const [tool, t] of Object.entries(results)) {
      const med = (ts: Timing[]): Timing => ({ wall: median(ts.map((x) => x.wall)), cpu: median(ts.map((x) => x.cpu)), rssMb: median(ts.map((x) => x.rssMb)) });
      const [c, w, e] = [med(t.cold), med(t.warm), med(t.edited)];
      console.log(`${tool}:\n  cold   ${fmt(c)}\n  warm   ${fmt(w)}  (${((100 * w.wall) / c.wall).toFixed(1)}% of cold)\n  edited ${fmt(e)}  (${((100 * e.wall) / c.wall).toFixed(1)}% of cold)`);
    }
    const s = results.stowage!;
    const b = results['buildah bud --layers']!;
    const ratio = (p: Phase) => (median(s[p].map((x) => x.wall)) / median(b[p].map((x) => x.wall))).toFixed(2);
    console.log(`stowage/buildah: cold ${ratio('cold')}x, warm ${ratio('warm')}x, edited ${ratio('edited')}x; load ${load()}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
