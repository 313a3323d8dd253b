/**
 * Issue #7's warm rebuild: the shared-base workload (bench/workloads/shared-base.ts: 20 images on one
 * busybox base, each COPY 4 KB + a small RUN, pushed to 5 repositories of a local docker-registry)
 * built cold once per round, then rebuilt unchanged `--warm` times, each rebuild interleaved with a
 * `node -e 0` so the ratio can be read against what any Node process costs on this machine now;
 * then one context file of one image is edited and the spec rebuilt once (issue #7's second case).
 * Prints median wall, CPU (user+sys from GNU time) and peak RSS, the warm/cold ratio, and the blob
 * uploads the warm runs made (the registry's access log; the target is none).
 *
 * Usage: node --import tsx bench/micro/warm-build.ts [--rounds 3] [--warm 5] [--images 20] [--repos 5]
 *          [--stowage PATH ...]   (more than one: compared side by side, interleaved; default ./bin/stowage)
 *          [--profile DIR]        (V8 CPU profiles of the warm runs: node with the launcher's shebang flags + --cpu-prof)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { imageDockerfile, sharedBaseImages, sharedBaseSpec } from '../workloads/shared-base.js';
import { busyboxLayout } from '../../test/helpers/busybox-image.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { shebangNodeFlags } from './launcher.js';
import { timedCommand, type Timing } from './timed.js';
import { median } from '../lib/stats.js';
import { flag as arg, flags as all } from './flags.js';

const ROUNDS = Number(arg('rounds', '3'));
const WARM = Number(arg('warm', '5'));
const IMAGES = Number(arg('images', '20'));
const REPOS = Number(arg('repos', '5'));
const REPO = resolve(import.meta.dirname, '../..');
const STOWAGES = (all('stowage').length > 0 ? all('stowage') : [join(REPO, 'bin/stowage')]).map((p) => resolve(p));
const PROFILE = arg('profile', '');

const timed = timedCommand;
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');


function writeContexts(dir: string): void {
  for (let k = 0; k < IMAGES; k++) {
    const name = `img-${String(k).padStart(2, '0')}`;
    mkdirSync(join(dir, name), { recursive: true });
    // Fixed bytes per image (not random): every round builds the same images.
    writeFileSync(join(dir, name, 'data.bin'), Buffer.alloc(4096, k));
    writeFileSync(join(dir, name, 'Dockerfile'), imageDockerfile(name));
  }
}

const fmt = (t: { wall: number; cpu: number; rssMb: number }) => `${t.wall.toFixed(0)} ms wall, ${t.cpu.toFixed(0)} ms CPU, ${t.rssMb.toFixed(0)} MB RSS`;
const med = (ts: Timing[]): Timing => ({ wall: median(ts.map((t) => t.wall)), cpu: median(ts.map((t) => t.cpu)), rssMb: median(ts.map((t) => t.rssMb)) });

async function main(): Promise<void> {
  const root = mkdtempSync('/tmp/stowage-warm-');
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: root, CI: '1' };
  process.env.TMPDIR = root;
  const results = STOWAGES.map(() => ({ cold: [] as Timing[], warm: [] as Timing[], uploads: 0, heads: [] as number[], edited: [] as Timing[], editUploads: [] as number[] }));
  const node: Timing[] = [];
  try {
    const base = await busyboxLayout();
    const contexts = join(root, 'contexts');
    writeContexts(contexts);
    console.log(`# warm build: ${IMAGES} images over ${REPOS} repositories, ${ROUNDS} rounds × (1 cold + ${WARM} warm), ${new Date().toISOString()}, load ${load()}`);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [si, stowage] of STOWAGES.entries()) {
        const registry = await startRegistry();
        const cache = join(root, `cache-${round}-${si}`);
        try {
          const baseRef = `${registry.host}/base:1`;
          execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${base.dir}:${base.tag}`, `docker://${baseRef}`]);
          const spec = join(contexts, `stowage-${round}-${si}.yaml`);
          writeFileSync(spec, sharedBaseSpec(baseRef, sharedBaseImages(registry.host, IMAGES, REPOS)));
          // Run as a user runs it (the launcher's shebang flags apply). Profiled: node with the
          // shebang's flags plus --cpu-prof (Node 20 refuses --cpu-prof in NODE_OPTIONS).
          const build = (profile: boolean) => {
            const argv = ['build', '-f', spec, '--cache-dir', cache, '--insecure-registry', registry.host, '--progress', 'plain'];
            return profile && PROFILE
              ? timed(process.execPath, [...shebangNodeFlags(stowage), '--cpu-prof', `--cpu-prof-dir=${resolve(PROFILE)}`, stowage, ...argv], { env, cwd: contexts })
              : timed(stowage, argv, { env, cwd: contexts });
          };
          const r = results[si]!;
          const cold = await build(false);
          r.cold.push(cold);
          const mark = registry.accessLog().length;
          const warm: Timing[] = [];
          for (let w = 0; w < WARM; w++) {
            node.push(await timed(process.execPath, ['-e', '0'], { env }));
            warm.push(await build(true));
          }
          r.warm.push(...warm);
          // The registry logs a request a moment after answering it.
          await new Promise((done) => setTimeout(done, 300));
          const log = registry.accessLog().slice(mark);
          // Upload sessions (POST, mounts included) and their PUTs: a warm run should make none.
          r.uploads += log.filter((e) => e.method === 'POST' || (e.method === 'PUT' && e.path.includes('/blobs/uploads/'))).length;
          r.heads.push(log.length / WARM);
          // Issue #7's second case: one context file of one image changes; only that image's
          // COPY and RUN should run, and only their layers (and its config) be uploaded.
          const changed = join(contexts, 'img-00', 'data.bin');
          writeFileSync(changed, Buffer.alloc(4096, 200 + round));
          const editMark = registry.accessLog().length;
          const edited = await build(false);
          r.edited.push(edited);
          await new Promise((done) => setTimeout(done, 300));
          r.editUploads.push(registry.accessLog().slice(editMark).filter((e) => e.method === 'PUT' && e.path.includes('/blobs/uploads/')).length);
          writeFileSync(changed, Buffer.alloc(4096, 0)); // as writeContexts made it: the next round's cold build is the same
          console.log(`round ${round + 1} ${STOWAGES.length > 1 ? `[${si}] ` : ''}cold: ${fmt(cold)}; warm median: ${fmt(med(warm))}; one file edited: ${fmt(edited)}; load ${load()}`);
        } finally {
          await registry.stop();
          rmSync(cache, { recursive: true, force: true });
        }
      }
    }
    const n = med(node);
    console.log(`node -e 0 median: ${fmt(n)}`);
    for (const [si, stowage] of STOWAGES.entries()) {
      const r = results[si]!;
      const c = med(r.cold);
      const w = med(r.warm);
      console.log(`${stowage}:`);
      console.log(`  cold median (${r.cold.length}): ${fmt(c)}`);
      console.log(`  warm median (${r.warm.length}): ${fmt(w)}; minus node -e 0: ${(w.wall - n.wall).toFixed(0)} ms wall, ${(w.cpu - n.cpu).toFixed(0)} ms CPU`);
      console.log(`  warm/cold: ${((100 * w.wall) / c.wall).toFixed(1)}% wall, ${((100 * w.cpu) / c.cpu).toFixed(1)}% CPU; registry requests per warm run ${median(r.heads)}, blob upload requests in warm runs ${r.uploads}`);
      const e = med(r.edited);
      console.log(`  one file of one image edited (${r.edited.length}): ${fmt(e)}; ${((100 * e.wall) / c.wall).toFixed(1)}% of cold wall; blobs uploaded per run ${median(r.editUploads)}`);
    }
    console.log(`load ${load()}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
